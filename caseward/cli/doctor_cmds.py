"""``caseward doctor``: check a database's invariants; exit 1 listing each violation."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from cases.core.db import unit_of_work
from cases.core.settings import get_settings
from cases.integrity import CHECKS, run_checks
from caseward.cli.common import STATE, emit, err, table


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Check that the database keeps Caseward's guarantees: every case equals the replay of
    its events; no notice e-mailed twice; everyone enforced against was told and had a
    passed deadline (or an urgent approval); every action in force was noticed; app and
    account statuses follow their actions in force, across cases; nothing held claimed past
    its lease; no closed case with unsettled actions. Read only. Exit 1 when anything is
    wrong, listing each violation with its case."""
    with unit_of_work() as session:
        report = run_checks(session, now=STATE.now(), settings=get_settings())
    checked = ", ".join(f"{n:,} {what}" for what, n in report.checked.items())
    emit(
        report.as_dict(),
        as_json,
        lambda: (
            table(
                f"{len(report.violations)} violation(s); checked {checked}",
                ["case", "check", "what is wrong"],
                [[v.case_id or "-", v.check, Text(v.detail)] for v in report.violations],
            )
            if report.violations
            else Text(f"no violations of {len(CHECKS)} invariants; checked {checked}")
        ),
    )
    if report.violations:
        err.print(f"caseward doctor: {len(report.violations)} violation(s)")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


__all__ = ["doctor", "register"]
