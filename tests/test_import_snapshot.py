"""Snapshot validation and registry import (docs/platform-data.md, input contract)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sqlalchemy import Engine, select, update

from cases.core.db import session_scope
from cases.core.models import App, Developer
from cases.core.settings import DetectionSettings
from cases.detection.problems import ImportFailed
from cases.detection.registry_import import import_registry
from cases.detection.run import detect_findings, registry_import_alongside
from cases.detection.snapshot import open_snapshot
from tests.detection_fixtures import SnapshotBuilder, sqlite_engine


def base() -> SnapshotBuilder:
    return (
        SnapshotBuilder()
        .developer("d-1")
        .developer("d-2")
        .app(
            "a-1", "d-1", "Weather Relay", "Posts the weather", "https://wx.io", "https://wx.io/cb"
        )
        .app("a-2", "d-2", "Quote Bot", "Daily quotes", limit=500)
        .usage("a-1", 0, 10, 0, 2)
        .usage("a-1", 1, 12, 0, 3)
        .reports("a-1", 1)
        .link("d-1", "ip", "h1")
    )


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(ImportFailed) as info:
        open_snapshot(folder)
    return [str(p) for p in info.value.problems]


def test_clean_snapshot_loads_typed_tables(tmp_path: Path) -> None:
    with open_snapshot(base().write(tmp_path / "s")) as snap:
        assert snap.count("apps") == 2
        assert snap.count("usage") == 2
        row = snap.con.execute("SELECT requests FROM usage ORDER BY hour LIMIT 1").fetchone()
        assert row == (10,)


def test_bad_timestamp_is_located(tmp_path: Path) -> None:
    b = base()
    b.rows["usage"][1][1] = "2026-11-01 25:00"
    assert problems_of(b.write(tmp_path / "s")) == [
        "usage.csv:3:hour: not an ISO 8601 timestamp with offset or Z (got '2026-11-01 25:00')"
    ]


def test_timestamp_without_offset_is_rejected(tmp_path: Path) -> None:
    b = base()
    b.rows["developers"][0][3] = "2025-01-01T00:00:00"
    assert problems_of(b.write(tmp_path / "s"))[0].startswith("developers.csv:2:created_at:")


def test_unknown_developer_and_app(tmp_path: Path) -> None:
    b = base().app("a-3", "d-9", "Ghost").usage("a-404", 3, 1).link("d-7", "device", "x")
    assert problems_of(b.write(tmp_path / "s")) == [
        "account_links.csv:3:developer_id: unknown developer 'd-7' (not in developers.csv)",
        "apps.csv:4:developer_id: unknown developer 'd-9' (not in developers.csv)",
        "usage.csv:4:app_id: unknown app 'a-404' (not in apps.csv)",
    ]


def test_duplicate_ids(tmp_path: Path) -> None:
    b = base().developer("d-1").app("a-2", "d-1", "Again").usage("a-1", 0, 3)
    assert problems_of(b.write(tmp_path / "s")) == [
        "apps.csv:4:app_id: duplicate app_id (first on line 3)",
        "developers.csv:4:developer_id: duplicate developer_id (first on line 2)",
        "usage.csv:4:hour: duplicate app_id + hour (first on line 2)",
    ]


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "s")
    text = (folder / "apps.csv").read_text().replace("callback_urls", "callbacks")
    (folder / "apps.csv").write_text(text)
    (folder / "reports.csv").unlink()
    assert problems_of(folder) == [
        "apps.csv:1:callback_urls: required column is missing",
        "reports.csv:0:-: required file is missing",
    ]


def test_negative_count_and_other_values(tmp_path: Path) -> None:
    b = base()
    b.rows["usage"][0][2] = -5
    b.rows["usage"][1][4] = "many"
    b.rows["developers"][1][2] = "not-an-email"
    b.rows["reports"][0][3] = "rude"
    b.rows["apps"][0][4] = "wx.io"
    assert problems_of(b.write(tmp_path / "s")) == [
        "apps.csv:2:website: not an http(s) URL (got 'wx.io')",
        "developers.csv:3:email: not an e-mail address (got 'not-an-email')",
        "reports.csv:2:reason: not one of spam/abuse/automation/other (got 'rude')",
        "usage.csv:2:requests: is negative: counts are integers >= 0 (got '-5')",
        "usage.csv:3:posts: not an integer >= 0 (got 'many')",
    ]


def test_truncated_file(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "s")
    text = (folder / "usage.csv").read_text()
    (folder / "usage.csv").write_text(text[: len(text) - 12])
    found = problems_of(folder)
    assert len(found) == 1
    assert found[0].startswith("usage.csv:3:")
    assert "truncated" in found[0] or "incomplete" in found[0]


def test_all_problems_reported_up_to_cap(tmp_path: Path) -> None:
    b = base()
    for hour in range(10, 40):
        b.usage("a-2", hour, -1)
    folder = b.write(tmp_path / "s")
    with pytest.raises(ImportFailed) as info:
        open_snapshot(folder, max_problems=5)
    assert info.value.total == 30
    assert len(info.value.problems) == 5


def test_quoted_newlines_keep_physical_lines(tmp_path: Path) -> None:
    b = base().app("a-3", "d-1", "Multi", "line one\nline two\nline three").app("a-4", "d-x", "Z")
    assert problems_of(b.write(tmp_path / "s")) == [
        "apps.csv:7:developer_id: unknown developer 'd-x' (not in developers.csv)"
    ]


def test_parquet_files_are_read(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "s")
    con = duckdb.connect()
    source = folder / "usage.csv"
    con.execute(
        f"COPY (SELECT app_id, hour::TIMESTAMPTZ AS hour, requests, rate_limited, posts "
        f"FROM read_csv('{source}')) TO '{folder / 'usage.parquet'}' (FORMAT parquet)"
    )
    source.unlink()
    with open_snapshot(folder) as snap:
        assert snap.count("usage") == 2
    con.execute(
        f"COPY (SELECT app_id, hour, -1 AS requests, rate_limited, posts "
        f"FROM '{folder / 'usage.parquet'}') TO '{folder / 'bad.parquet'}' (FORMAT parquet)"
    )
    (folder / "bad.parquet").replace(folder / "usage.parquet")
    assert problems_of(folder)[0] == (
        "usage.parquet:1:requests: is negative: counts are integers >= 0 (got '-1')"
    )


def test_truncated_parquet_is_reported(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "s")
    (folder / "reports.csv").unlink()
    (folder / "reports.parquet").write_bytes(b"PAR1\x00\x00garbage")
    found = problems_of(folder)
    assert found[0].startswith("reports.parquet:0:-: unreadable Parquet file")


def test_reimport_updates_registry_but_not_status(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    b = base()
    with open_snapshot(b.write(tmp_path / "s1")) as snap, session_scope(engine) as session:
        first = import_registry(session, snap)
    assert (first.apps_new, first.developers_new) == (2, 2)
    with session_scope(engine) as session:
        session.execute(update(App).where(App.id == "a-1").values(status="banned"))
        session.execute(update(Developer).where(Developer.id == "d-1").values(status="suspended"))
    b.rows["apps"][0][2] = "Weather Relay Pro"
    b.developer("d-3").app("a-3", "d-3", "New App")
    with open_snapshot(b.write(tmp_path / "s2")) as snap, session_scope(engine) as session:
        second = import_registry(session, snap)
    assert (second.apps_new, second.apps_changed, second.developers_new) == (1, 1, 1)
    with session_scope(engine) as session:
        app = session.get(App, "a-1")
        dev = session.get(Developer, "d-1")
        assert app is not None and dev is not None
        assert (app.name, app.status, dev.status) == ("Weather Relay Pro", "banned", "suspended")
        assert len(session.scalars(select(App)).all()) == 3
    with open_snapshot(tmp_path / "s2") as snap, session_scope(engine) as session:
        third = import_registry(session, snap)
    assert (third.apps_new, third.apps_changed) == (0, 0)


def test_requests_7d_counts_the_last_week(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    b = base().usage("a-1", 200, 1000)
    with open_snapshot(b.write(tmp_path / "s")) as snap, session_scope(engine) as session:
        import_registry(session, snap)
    with session_scope(engine) as session:
        app = session.get(App, "a-1")
        assert app is not None and app.requests_7d == 1000


def test_reimport_on_each_backend(engine: Engine, tmp_path: Path) -> None:
    """The SQLite fast path and the portable (PostgreSQL) path agree."""
    b = base()
    with open_snapshot(b.write(tmp_path / "s1")) as snap, session_scope(engine) as session:
        first = import_registry(session, snap)
    with session_scope(engine) as session:
        session.execute(update(App).where(App.id == "a-2").values(status="restricted"))
    b.rows["apps"][1][2] = "Quote Bot 2"
    b.developer("d-3").app("a-3", "d-3", "New App")
    with open_snapshot(b.write(tmp_path / "s2")) as snap, session_scope(engine) as session:
        second = import_registry(session, snap)
    with open_snapshot(tmp_path / "s2") as snap, session_scope(engine) as session:
        third = import_registry(session, snap)
    assert (first.apps_new, first.developers_new) == (2, 2)
    assert (second.apps_new, second.apps_changed, second.developers_changed) == (1, 1, 0)
    assert (third.apps_new, third.apps_changed) == (0, 0)
    with session_scope(engine) as session:
        app = session.get(App, "a-2")
        assert app is not None
        assert (app.name, app.status, app.rate_limit_per_hour) == ("Quote Bot 2", "restricted", 500)
        assert app.created_at.isoformat() == "2025-02-01T00:00:00+00:00"


def test_import_beside_detection_is_one_unit_of_work_with_it(
    engine: Engine, tmp_path: Path
) -> None:
    """The registry import runs in a second thread while the detectors run; when the
    detectors fail, the block waits for the import and its rows roll back with the rest."""
    with open_snapshot(base().write(tmp_path / "s")) as snap:
        with (
            pytest.raises(RuntimeError, match="a detector failed"),
            session_scope(engine) as session,
            registry_import_alongside(session, snap) as importing,
        ):
            detect_findings(snap, DetectionSettings())
            raise RuntimeError("a detector failed")
        assert importing.done()
        with session_scope(engine) as session:
            assert session.scalars(select(App)).all() == []
        with session_scope(engine) as session:
            with registry_import_alongside(session, snap) as importing:
                findings = detect_findings(snap, DetectionSettings())
            summary, seconds = importing.result()  # the session is the caller's again
        assert (summary.apps_new, summary.developers_new) == (2, 2) and seconds > 0
        assert findings == []
    with session_scope(engine) as session:
        assert len(session.scalars(select(App)).all()) == 2
