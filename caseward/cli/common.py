"""What every command shares: the simulated clock, the actor, sessions and output."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.segment import Segment
from rich.table import Table

from cases.core import identity
from cases.core.clock import parse_instant, utcnow
from cases.core.db import get_engine
from cases.core.errors import InvalidInput, UsageError
from cases.core.inert import inert
from cases.core.settings import Settings, get_settings

# the largest id or count a database column holds (SQLite integers, PostgreSQL bigint)
MAX_INT = 2**63 - 1


class InertConsole(Console):
    """A console whose printed text cannot steer the terminal: control characters and bidi
    overrides in what it prints (app names, reasons, statements...) are replaced before
    Rich adds its own styling (JSON output escapes them anyway)."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        safe = (s if s.control else Segment(inert(s.text), s.style) for s in buffer)
        return super()._render_buffer(safe)


out = InertConsole(soft_wrap=True)
err = InertConsole(stderr=True, soft_wrap=True)


def _simulation_only(option: str) -> UsageError:
    return UsageError(
        f"{option} is accepted only in simulation mode (CASEWARD_SIMULATION=true); "
        "outside it Caseward uses the real time and who you are logged in as"
    )


@dataclass
class CliState:
    """Global options, set once by the root callback."""

    now_text: str | None = None
    actor: str | None = None

    def check(self) -> None:
        """Read the configuration, and refuse simulated time or a typed identity outside
        simulation, before any command runs."""
        settings = get_settings()
        typed = self.typed_actor()
        if not settings.simulation:
            if self.now_text is not None:
                raise _simulation_only("--now")
            if typed is not None:
                raise _simulation_only("--actor" if self.actor is not None else "CASEWARD_ACTOR")
        if self.now_text is not None:
            self.now()  # a malformed --now is bad usage for every command, not only writers
        if typed is not None:
            identity.claimable(typed, source="--actor")

    def typed_actor(self) -> str | None:
        return self.actor if self.actor is not None else os.environ.get("CASEWARD_ACTOR")

    def now(self) -> datetime:
        """The command's time: ``--now`` or ``now`` (simulation only), else the real clock."""
        if self.now_text is None:
            return get_settings().now or utcnow()
        try:
            return parse_instant(self.now_text)
        except ValueError as exc:
            raise InvalidInput(f"--now: {self.now_text!r} is not a usable time ({exc})") from exc

    def who(self) -> str:
        """Who acts: the typed name in simulation, else the login user or database role."""
        settings = get_settings()
        typed = self.typed_actor()
        if typed is not None and settings.simulation:
            return identity.claimable(typed, source="--actor")
        if settings.identity == "database":
            name, source = identity.database_role(get_engine()), "the database role"
        else:
            name, source = identity.login_user(), "the login user"
        return identity.claimable(name, source=source)


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


@contextmanager
def spinner(label: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on stderr (silent when stderr is not a terminal)."""
    started = time.perf_counter()
    if not err.is_terminal:
        yield lambda _message: None
        return
    with err.status(label) as status:

        def update(message: str) -> None:
            status.update(f"{label}: {message} ({time.perf_counter() - started:.0f}s)")

        yield update
