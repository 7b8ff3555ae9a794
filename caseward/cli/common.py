"""What every command shares: the simulated clock, the actor, sessions and output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from cases.core.clock import parse_instant, utcnow
from cases.core.errors import InvalidInput
from cases.core.settings import Settings, get_settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class CliState:
    """Global options, set once by the root callback."""

    now_text: str | None = None
    actor: str | None = None

    def now(self) -> datetime:
        text = self.now_text or os.environ.get("CASEWARD_NOW")
        if not text:
            configured = get_settings().now
            return configured or utcnow()
        try:
            return parse_instant(text)
        except ValueError as exc:
            raise InvalidInput(f"--now: {text!r} is not an ISO 8601 time") from exc

    def who(self) -> str:
        return self.actor or os.environ.get("CASEWARD_ACTOR") or os.environ.get("USER") or "lead"


STATE = CliState()


def settings() -> Settings:
    return get_settings()


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=False, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    return grid


def emit(value: Any, as_json: bool, render: Callable[[], Any]) -> None:
    """Print ``value`` as JSON for scripts, or ``render()`` for people."""
    if as_json:
        print_json(value)
    else:
        out.print(render())


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"
