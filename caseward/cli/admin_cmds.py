"""``caseward init | config | advance``: set-up, configuration and the sweeper."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from cases.core.db import get_engine, unit_of_work
from cases.core.migrate import upgrade
from cases.core.models import Case
from cases.core.settings import get_settings, masked
from cases.email.delivery import deliver_pending
from cases.lifecycle import sweeper
from caseward.cli.common import STATE, emit, err, table

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def init() -> None:
    """Create the database, or migrate it to the current schema."""
    engine = get_engine()
    before, after = upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    if before == after:
        err.print(f"database {url} is up to date ({after})")
    else:
        err.print(f"database {url} migrated {before or 'empty'} -> {after}")


def config(as_json: Json = False) -> None:
    """Print the effective configuration (secrets masked)."""
    values = masked(get_settings())
    emit(values, as_json, lambda: table("configuration", ["setting", "value"], _flatten(values)))


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
