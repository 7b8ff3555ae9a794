"""``caseward appeal ...``: the developer's appeal and the lead's decision."""

from __future__ import annotations

from typing import Annotated

import typer

from cases.core.db import unit_of_work
from cases.core.errors import InvalidInput
from cases.core.settings import get_settings
from cases.enforcement import appeals
from cases.lifecycle import service
from caseward.cli.case_cmds import CaseId, Json, Reason, resume_waiting_flow, tell_platform
from caseward.cli.common import STATE, emit

appeal_app = typer.Typer(help="Appeals of enforcement decisions.", no_args_is_help=True)


@appeal_app.command("submit")
def submit(
    case_id: CaseId,
    statement: Annotated[str, typer.Option("--statement", help="The developer's appeal.")],
    developer: Annotated[
        str | None,
        typer.Option(
            "--developer",
            help="The developer who appealed (a lead entering an appeal on their behalf; "
            "required from a lead when leads are configured).",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Record a developer's appeal of the case's enforcement (one, within the window).

    A lead who enters an appeal a developer sent names the developer with --developer: the
    developer is recorded as the appellant, the lead as who entered it.
    """
    who = STATE.who()
    if developer is None and who in get_settings().leads:
        raise InvalidInput(f"{who} is a lead: name the developer who appealed with --developer ID")
    with unit_of_work() as session:
        case = appeals.submit_appeal(
            session,
            case_id=case_id,
            actor=who,
            statement=statement,
            now=STATE.now(),
            developer_id=developer,
        )
        read = service.to_read(case)
    emit(read, as_json, lambda: f"case {read.id}: {read.status}")


@appeal_app.command("decide")
def decide(
    case_id: CaseId,
    reason: Reason,
    uphold: Annotated[bool, typer.Option("--uphold", help="Keep the enforcement.")] = False,
    overturn: Annotated[
        bool, typer.Option("--overturn", help="Reverse it and restore access.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Decide an appeal: a lead other than the enforcement's approver."""
    if uphold == overturn:
        raise InvalidInput("give exactly one of --uphold or --overturn")
    with unit_of_work() as session:
        case = appeals.decide_appeal(
            session,
            case_id=case_id,
            reviewer=STATE.who(),
            overturn=overturn,
            reason=reason,
            now=STATE.now(),
        )
        read = service.to_read(case)
    emit(read, as_json, lambda: f"case {read.id}: {read.status} ({read.outcome})")
    tell_platform(case_id)
    resume_waiting_flow(case_id, "review-appeal", "overturn" if overturn else "uphold", reason)


def register(app: typer.Typer) -> None:
    app.add_typer(appeal_app, name="appeal")
