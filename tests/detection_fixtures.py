"""Helpers for detection and import tests: write small snapshots in the contract's format."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

import cases.core.models  # noqa: F401  (registers the tables)
from cases.core.db import Base, make_engine
from cases.detection.contract import FILES

HEADERS: dict[str, list[str]] = {spec.name: spec.column_names for spec in FILES}

T0 = "2026-11-01T00:00:00Z"


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])


class SnapshotBuilder:
    """Build a snapshot row by row, then ``write(folder)``."""

    def __init__(self) -> None:
        self.rows: dict[str, list[list[Any]]] = {name: [] for name in HEADERS}
        self._reports = 0

    def developer(self, dev_id: str, handle: str | None = None) -> SnapshotBuilder:
        self.rows["developers"].append(
            [dev_id, handle or dev_id, f"{dev_id}@mail.test-corp.com", "2025-01-01T00:00:00Z"]
        )
        return self

    def app(
        self,
        app_id: str,
        dev_id: str,
        name: str,
        description: str = "",
        website: str = "",
        callbacks: str = "",
        limit: int | None = None,
    ) -> SnapshotBuilder:
        self.rows["apps"].append(
            [app_id, dev_id, name, description, website, callbacks, "2025-02-01T00:00:00Z", limit]
        )
        return self

    def usage(
        self, app_id: str, hour: int, requests: int, rate_limited: int = 0, posts: int = 0
    ) -> SnapshotBuilder:
        stamp = f"2026-11-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z"
        self.rows["usage"].append([app_id, stamp, requests, rate_limited, posts])
        return self

    def reports(self, app_id: str, count: int, reason: str = "spam") -> SnapshotBuilder:
        for _ in range(count):
            self._reports += 1
            self.rows["reports"].append([f"r-{self._reports}", app_id, T0, reason])
        return self

    def link(self, dev_id: str, link_type: str, value: str) -> SnapshotBuilder:
        self.rows["account_links"].append([dev_id, link_type, value])
        return self

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, header in HEADERS.items():
            write_csv(folder / f"{name}.csv", header, self.rows[name])
        return folder


def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    Base.metadata.create_all(engine)
    return engine
