"""The filters of the recovery commands (``outbox resolve``, ``cases unblock-delivery``):
one id, or a selection with a ``--dry-run`` count, acted on row by row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.text import Text
from sqlalchemy.orm import Session

from cases.core.clock import parse_instant
from cases.core.db import unit_of_work
from cases.core.enums import EmailTemplate
from cases.core.errors import InvalidInput
from cases.email.recovery import Selection, each_in_savepoint
from caseward.cli.common import MAX_INT, emit

TemplateFilter = Annotated[
    EmailTemplate | None, typer.Option("--template", help="Only e-mails of this template.")
]
CaseFilter = Annotated[
    int | None, typer.Option("--case", help="Only this case.", min=1, max=MAX_INT)
]
SinceFilter = Annotated[
    str | None,
    typer.Option("--since", help="Only e-mails last tried at or after this time (ISO 8601)."),
]
AllFilter = Annotated[
    bool, typer.Option("--all", help="Every row the command applies to (no other filter).")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Count what would change; change nothing.")]


def selection(
    one: int | None,
    *,
    template: EmailTemplate | None,
    case_id: int | None,
    since: str | None,
    select_all: bool,
    narrowed: bool = False,
) -> Selection | None:
    """None for a single id; else the selection. Acting on many rows needs a filter or
    ``--all``, so that a forgotten argument never settles everything."""
    filtered = narrowed or template is not None or case_id is not None or since is not None
    if one is not None:
        if filtered or select_all:
            raise InvalidInput("give an id or filters (--status/--template/--case/--since/--all)")
        return None
    if not filtered and not select_all:
        raise InvalidInput(
            "name one id, or select with --status, --template, --case or --since, or --all"
        )
    if filtered and select_all:
        raise InvalidInput("--all selects every row: give it without other filters")
    try:
        instant = parse_instant(since) if since is not None else None
    except ValueError as exc:
        raise InvalidInput(f"--since: {since!r} is not an ISO 8601 time ({exc})") from exc
    return Selection(
        template=template.value if template is not None else None, case_id=case_id, since=instant
    )


def settle_selected(
    what: str,
    *,
    dry_run: bool,
    as_json: bool,
    select: Callable[[Session], list[int]],
    act: Callable[[Session, int], object],
) -> int:
    """In one unit of work: select the rows, then count them (``--dry-run``) or act on each
    in its own savepoint; print either; exit 1 when a row was refused."""
    with unit_of_work() as session:
        ids = select(session)
        if dry_run:
            counted: dict[str, Any] = {"dry_run": True, "count": len(ids), "ids": ids}
            emit(counted, as_json, lambda: Text(f"{len(ids)} {what} (dry run: nothing changed)"))
            return 0
        outcome = each_in_savepoint(session, ids, lambda row: act(session, row))
    result = {"dry_run": False, "done": outcome.done, "refused": outcome.refused}
    emit(
        result,
        as_json,
        lambda: Text(
            f"{len(outcome.done)} {what}"
            + "".join(f"\n  refused {i}: {why}" for i, why in outcome.refused.items())
        ),
    )
    return 1 if outcome.refused else 0
