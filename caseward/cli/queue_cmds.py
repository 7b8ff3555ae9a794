"""``caseward queue``: what waits for a lead, overdue items first, each with its SLA target."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from cases.core.db import unit_of_work
from cases.leads.queue import SLA_SETTING, QueueItem, target, work_queue
from caseward.cli.case_views import age, columns, hanging
from caseward.cli.common import MAX_INT, STATE, emit, settings

# the command that settles each kind of item
COMMANDS = {
    "triage": "caseward cases confirm|dismiss ID --reason TEXT (or by filter, see --help)",
    "approve-enforcement": "caseward cases approve-enforcement|decline-enforcement ID "
    "--reason TEXT",
    "review-appeal": "caseward appeal decide ID --uphold|--overturn --reason TEXT",
    "extension-request": "caseward cases extend ID --reason TEXT",
    "check-compliance": "caseward cases resolve|reject-compliance ID --reason TEXT",
    "unblock-delivery": "caseward cases unblock-delivery ID --reason TEXT",
}


def _span(delta: timedelta) -> str:
    """``2d``, ``5h``, ``12m``: a duration in its largest whole unit."""
    return age(datetime.min, datetime.min + max(delta, timedelta(0)))


def _due(item: QueueItem, now: datetime) -> str:
    if item.overdue:
        return f"overdue {_span(now - item.due_at)}"
    return f"in {_span(item.due_at - now)}"


def _targets() -> str:
    sla = settings().sla
    return ", ".join(f"{k} {_span(target(k, sla))}" for k in SLA_SETTING)


def _view(items: list[QueueItem], total: int, late: int, now: datetime) -> RenderableType:
    head = f"{total} item(s) wait for a lead, {late} overdue"
    if len(items) < total:
        head += f"; the first {len(items)}"
    targets = "\n".join(hanging(f"SLA targets: {_targets()}", "", "  "))
    parts: list[RenderableType] = [Text(head, style="bold"), Text(targets)]
    if not items:
        return Group(*parts)
    header = ["due", "kind", "case", "waiting", "assignee", "policy"]
    rows = [
        [_due(i, now), i.kind, str(i.case_id), age(i.since, now), i.assignee or "-", i.policy]
        for i in items
    ]
    lines = columns(header, rows, right=[2, 3])
    parts.append(Text(lines[0], style="bold"))
    for item, line in zip(items, lines[1:], strict=True):
        parts.append(Text(line, style="red" if item.overdue else ""))
    parts.append(Text("decide with:", style="bold"))
    for kind in sorted({i.kind for i in items}):
        command = COMMANDS.get(kind, "caseward cases show ID")
        parts.append(Text("\n".join(hanging(f"{kind}: {command}", "  ", "    "))))
    return Group(*parts)


def queue(
    mine: Annotated[bool, typer.Option("--mine", help="Only the cases assigned to me.")] = False,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only items of this kind (e.g. triage).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_INT, help="At most this many items.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """What waits for a lead: new cases to triage, enforcements to approve, appeals and
    extension requests to decide, compliance reports to verify, notices not delivered;
    each with its age and its SLA target (sla.* settings), overdue items first."""
    now = STATE.now()
    with unit_of_work() as session:
        items = work_queue(session, now=now, assignee=STATE.who() if mine else None)
    if kind is not None:
        items = [i for i in items if i.kind == kind]
    late = sum(1 for i in items if i.overdue)
    shown = items[:limit]
    result = {
        "total": len(items),
        "overdue": late,
        "by_kind": dict(Counter(i.kind for i in items)),
        "items": shown,
    }
    emit(result, as_json, lambda: _view(shown, len(items), late, now))


def register(app: typer.Typer) -> None:
    app.command("queue")(queue)
