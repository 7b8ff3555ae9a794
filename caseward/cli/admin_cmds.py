"""``caseward init | config | advance``: set-up, configuration and the sweeper."""

from __future__ import annotations

import json
import shlex
import textwrap
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.text import Text
from sqlalchemy import func, select

from cases.core.db import get_engine, unit_of_work
from cases.core.migrate import backup_before_upgrade, upgrade
from cases.core.models import Case
from cases.core.settings import Settings, env_name, get_settings, masked
from cases.email.delivery import deliver_pending
from cases.lifecycle import sweeper
from caseward.cli.case_views import width
from caseward.cli.common import STATE, emit, err, table

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _settings_rows(
    model: type[BaseModel], values: dict[str, Any], prefix: str = ""
) -> list[tuple[str, Any, str]]:
    """Each setting as (dotted name, effective value, description), groups flattened."""
    rows: list[tuple[str, Any, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_settings_rows(annotation, values[name], f"{prefix}{name}."))
        else:
            rows.append((f"{prefix}{name}", values.get(name), field.description or ""))
    return rows


def _env_value(value: Any) -> str:
    """A value as the environment takes it: JSON for lists and tables, quoted for a shell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = json.dumps(value) if isinstance(value, list | dict) else value
    return shlex.quote(str(text))


def config_lines(settings: Settings) -> str:
    """Every setting as the line a lead types (``NAME=value``), its meaning below it."""
    lines = []
    for path, value, description in _settings_rows(Settings, masked(settings)):
        assignment = f"{env_name(path)}={_env_value(value)}"
        lines += textwrap.wrap(
            assignment, width(), subsequent_indent="    ", break_on_hyphens=False
        )
        if value is None:
            description += " (not set)"
        lines += textwrap.wrap(
            description, width(), initial_indent="    ", subsequent_indent="    "
        )
    return "\n".join(lines)


def init() -> None:
    """Create the database, or migrate it to the current schema. An SQLite database holding
    data is first copied aside (next to it, named after its revision)."""
    engine = get_engine()
    url = engine.url.render_as_string(hide_password=True)
    copy = backup_before_upgrade(engine)
    if copy is not None:
        err.print(f"copied {url} to {copy} before migrating it")
    before, after = upgrade(engine)
    if before == after:
        err.print(f"database {url} is up to date ({after})")
    else:
        err.print(f"database {url} migrated {before or 'empty'} -> {after}")


def config(as_json: Json = False) -> None:
    """Print the effective configuration (secrets masked), one line per setting as its
    environment variable is set, e.g. CASEWARD_DEADLINES__CHANGE_DAYS=30 (caseward.toml takes
    the same names as tables: [deadlines] change_days = 30)."""
    settings = get_settings()
    emit(masked(settings), as_json, lambda: Text(config_lines(settings)))


def advance(
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000)] = 500,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what is due; change nothing.")
    ] = False,
    deliver: Annotated[
        bool,
        typer.Option("--deliver/--no-deliver", help="Deliver the e-mails the steps queued."),
    ] = True,
    as_json: Json = False,
) -> None:
    """Perform every step due now (or at --now): outreach, requests, reminders, expiry,
    enforcement, appeal windows; then deliver the e-mails they queued. Running it again at
    the same time does nothing more."""
    now, engine = STATE.now(), get_engine()
    if dry_run:
        with unit_of_work() as session:
            due = {
                step.name: session.scalar(select(func.count(Case.id)).where(step.due(now))) or 0
                for step in sweeper.STEPS
            }
        emit(
            due,
            as_json,
            lambda: table(f"due at {now.isoformat()}", ["step", "cases"], list(due.items())),
        )
        return
    reports = sweeper.advance(
        engine,
        now=now,
        batch_size=batch_size,
        on_batch=lambda r: err.print(f"  {r.step}: {len(r.done)} done, {len(r.failed)} failed"),
    )
    result: dict[str, Any] = {r.step: {"done": r.done, "failed": r.failed} for r in reports}
    rows = [[r.step, len(r.done), len(r.failed)] for r in reports]
    failures = [f"case {cid}: {why}" for r in reports for cid, why in r.failed.items()]
    if deliver:
        delivery = deliver_pending(engine, now=now)
        result["deliver-email"] = delivery.as_dict()
        rows.append(["deliver-email", delivery.sent, delivery.failed])
        failures.extend(f"e-mail: {e}" for e in delivery.errors)
        if delivery.stopped:
            failures.append(f"delivery stopped: {delivery.stopped}")
    emit(
        result,
        as_json,
        lambda: table(f"advance at {now.isoformat()}", ["step", "done", "failed"], rows),
    )
    for line in failures:
        err.print(f"failed {line}")
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("config")(config)
    app.command("advance")(advance)
