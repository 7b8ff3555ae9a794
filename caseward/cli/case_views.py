"""What a lead reads in a terminal: ``cases list`` and ``cases show`` at any width from 80.

Rows a table cannot fit stay whole: a case in ``cases list`` and an event in the timeline
take two lines, the second wrapped to the terminal; evidence is shown as labelled values and
small tables instead of raw JSON (``--json`` keeps the raw shape for scripts).
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from cases.core.clock import parse_instant
from cases.core.enums import CaseStatus
from cases.core.schemas import CaseDetail, CaseRead, EventRead
from caseward.cli.common import fmt_time, out

# evidence lists longer than this are cut, with a count (``--json`` shows them whole)
MAX_ROWS = 8
INDENT = "    "


def width() -> int:
    """The terminal's width (80 when output is not a terminal)."""
    return max(out.width, 60)


def age(since: datetime, now: datetime) -> str:
    """``3d``, ``5h``, ``12m``: how long ago, in the largest whole unit."""
    seconds = max(int((now - since).total_seconds()), 0)
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


def summary(case: CaseRead) -> str:
    """What the case is about in one sentence: the finding's summary, or the lead's reason."""
    return " ".join(str(case.evidence.get("summary") or case.reason).split())


def wrapped(text: str, indent: str = INDENT) -> str:
    """``text`` wrapped to the terminal, every line indented by ``indent``."""
    return "\n".join(hanging(text, indent, indent))


def columns(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> list[str]:
    """The header and rows in aligned columns two spaces apart (``right``: the columns
    aligned to the right, numbers)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in (header, *rows)
    ]


def case_list(rows: Sequence[CaseRead], now: datetime) -> RenderableType:
    """One case per two lines: id, status, severity, age, assignee, deadline; then the
    policy and what was found, wrapped."""
    if not rows:
        return Text("0 cases")
    header = ["id", "status", "severity", "age", "assignee", "deadline"]
    cells = [
        [
            str(c.id),
            c.status,
            c.severity,
            age(c.created_at, now),
            c.assignee or "-",
            day(c.deadline),
        ]
        for c in rows
    ]
    lines = columns(header, cells, right=[0])
    body: list[RenderableType] = [
        Text(f"{len(rows)} case(s), oldest first", style="bold"),
        Text(lines[0], style="bold"),
    ]
    for case, line in zip(rows, lines[1:], strict=True):
        body.append(Text(line))
        body.append(Text(wrapped(f"{case.policy}: {summary(case)}"), style="dim"))
    return Group(*body)


# --- cases show ---------------------------------------------------------------------------


def _label(key: str) -> str:
    return key.replace("_", " ")


def _scalar(value: Any) -> str:
    """A value as a lead reads it: numbers grouped, instants without seconds."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    text = " ".join(str(value).split())
    if len(text) >= 19 and text[4:5] == "-" and text[10:11] == "T":
        try:
            return parse_instant(text).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return text
    return text


def _more(values: Sequence[Any]) -> str:
    extra = len(values) - MAX_ROWS
    return f" … +{extra} more" if extra > 0 else ""


def _records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _inline(value: Any) -> str:
    """A value on one line: lists joined, mappings as ``key value`` pairs."""
    if isinstance(value, Mapping):
        return ", ".join(f"{_label(k)} {_inline(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_inline(v) for v in value[:MAX_ROWS]) + _more(value)
    return _scalar(value)


def hanging(text: str, first: str, rest: str) -> list[str]:
    """``text`` wrapped to the terminal, its first line after ``first``, the others after
    ``rest``."""
    return textwrap.wrap(
        " ".join(text.split()),
        width(),
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def pairs(rows: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    """Labels in a column, their values wrapped beside them."""
    pad = max((len(label) for label, _ in rows), default=0) + 2
    lines = []
    for label, value in rows:
        lines += hanging(value, indent + label.ljust(pad), indent + " " * pad)
    return lines


def _record_lines(record: Mapping[str, Any], indent: str) -> list[str]:
    """One record as a bullet of ``key value`` pairs; records nested in it on lines below."""
    flat = {k: v for k, v in record.items() if not _records(v) and v not in (None, "", [], {})}
    lines = hanging(_inline(flat), indent + "- ", indent + "  ")
    for key, value in record.items():
        if _records(value):
            for inner in value[:MAX_ROWS]:
                lines += hanging(_inline(inner), indent + "    ", indent + "      ")
            if len(value) > MAX_ROWS:
                lines.append(f"{indent}    … {len(value) - MAX_ROWS} more {_label(key)}")
    return lines


def evidence_view(evidence: Mapping[str, Any]) -> RenderableType:
    """Every evidence field: plain values as ``label  value`` lines, lists of records as
    bullets (nested records indented below), long lists cut with a count."""
    fields = {k: v for k, v in evidence.items() if k != "summary" and v not in (None, "", [], {})}
    lines = pairs([(_label(k), _inline(v)) for k, v in fields.items() if not _records(v)], "  ")
    for key, value in fields.items():
        if not _records(value):
            continue
        lines.append(f"  {_label(key)} ({len(value)}):")
        for record in value[:MAX_ROWS]:
            lines += _record_lines(record, "    ")
        if len(value) > MAX_ROWS:
            lines.append(f"    … {len(value) - MAX_ROWS} more (--json shows all)")
    return Group(Text("Evidence", style="bold underline"), Text("\n".join(lines)))


def _changes_view(detail: CaseDetail) -> RenderableType | None:
    if not detail.change_requests:
        return None
    request = detail.change_requests[-1]
    head = f"Requested changes (asked {fmt_time(request.requested_at)}"
    head += f", due {fmt_time(request.due_at)})" if request.due_at else ", not delivered yet)"
    lines = [Text(head, style="bold underline")]
    for n, change in enumerate(request.changes, 1):
        lines.append(Text("\n".join(hanging(change, f"  {n}. ", "     "))))
    if request.response:
        answer = f"developer: {_label(request.response)} {fmt_time(request.responded_at)}"
        lines.append(Text(wrapped(f"{answer}: {request.response_text or ''}", "  ")))
    return Group(*lines)


def waiting(detail: CaseDetail) -> tuple[str, str] | None:
    """The lead's decision the case waits for, if any, and the command that takes it."""
    status = CaseStatus(detail.status)
    planned = detail.enforcement
    if (
        status is CaseStatus.ENFORCEMENT_DUE
        and planned
        and planned.requires_approval
        and not planned.approved_by
    ):
        kinds = Counter(a.kind for a in planned.actions)
        what = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
        return (
            f"Awaiting a lead's approval: {what}",
            f"caseward cases approve-enforcement|decline-enforcement {detail.id} --reason TEXT",
        )
    if status is CaseStatus.APPEALED:
        return (
            "Awaiting a lead's decision on the appeal",
            f"caseward appeal decide {detail.id} --uphold|--overturn --reason TEXT",
        )
    if status is CaseStatus.COMPLIANCE_REPORTED:
        return (
            "Awaiting a lead's check of the changes the developer reports",
            f"caseward cases resolve|reject-compliance {detail.id} --reason TEXT",
        )
    if detail.delivery_blocked:
        return (
            "A notice could not be delivered; escalation waits for a lead",
            f"caseward cases unblock-delivery {detail.id} --reason TEXT",
        )
    return None


def repeat_offence(found: Mapping[str, Any]) -> str:
    """A confirmation's consequences for a repeat offender, in one sentence."""
    strikes, (before, after) = found["strikes"], found["severity"]
    parts = [f"severity {before} → {after}" if before != after else f"severity {after}"]
    if found.get("change_days"):
        parts.append(f"{found['change_days']}-day change deadline")
    if found.get("lead_approval"):
        parts.append("any enforcement needs a lead's approval")
    return f"repeat offender ({strikes} strike{'' if strikes == 1 else 's'}): " + ", ".join(parts)


def _event(event: EventRead) -> list[Text]:
    moved = f" → {event.to_status}" if event.from_status != event.to_status else ""
    who = event.actor
    if event.data.get("entered_by"):
        who += f" (entered by {event.data['entered_by']})"
    lines = [
        Text(f"{fmt_time(event.at)}  {who}  {_label(event.kind)}{moved}"),
        Text(wrapped(event.reason), style="dim"),
    ]
    if event.data.get("repeat_offence"):
        lines.append(Text(wrapped(repeat_offence(event.data["repeat_offence"])), style="dim"))
    return lines


def strikes_note(developer_ids: Sequence[str], strikes: Mapping[str, int]) -> str:
    """``d-1 (2 strikes) d-2``: each developer, with their strikes when they have any."""
    return " ".join(
        f"{d} ({n} strike{'' if n == 1 else 's'})" if (n := strikes.get(d)) else d
        for d in developer_ids
    )


def case_detail(detail: CaseDetail, now: datetime) -> RenderableType:
    """``cases show``: the case, what it waits for, the requested changes, the evidence, the
    enforcement, the appeal and the timeline."""
    facts = [
        ("opened", f"{fmt_time(detail.created_at)} by {detail.opened_by} "
                   f"({age(detail.created_at, now)} ago, {detail.source})"),
        ("assignee", detail.assignee or "-"),
        ("deadline", fmt_time(detail.deadline)),
        *([("outcome", detail.outcome)] if detail.outcome else []),
        ("apps", " ".join(detail.app_ids)),
        ("developers", strikes_note(detail.developer_ids, detail.developer_strikes)),
        *([("at confirmation", "strikes " + strikes_note(list(detail.prior_strikes),
                                                         detail.prior_strikes))]
          if detail.prior_strikes else []),
        ("reason", detail.reason),
    ]  # fmt: skip
    parts: list[RenderableType] = [
        Text.assemble(
            (f"Case {detail.id}", "bold"),
            f"  {detail.policy}  severity {detail.severity}  ",
            (detail.status, "bold cyan"),
        ),
        Text(wrapped(summary(detail), "")),
        Text("\n".join(pairs(facts))),
    ]
    if note := waiting(detail):
        what, command = note
        parts.append(Text(f"{what}\n  {command}", style="bold yellow"))
    if changes := _changes_view(detail):
        parts.append(changes)
    if detail.evidence:
        parts.append(evidence_view(detail.evidence))
    if detail.enforcement:
        planned = detail.enforcement
        lines = [
            Text("Enforcement", style="bold underline"),
            Text("\n".join(hanging(planned.reason, "  why: ", "       "))),
            Text(
                f"  urgent {'yes' if planned.urgent else 'no'}; approval "
                + ("needed" if planned.requires_approval else "not needed")
                + (f", given by {planned.approved_by}" if planned.approved_by else "")
            ),
        ]
        lines += [
            Text(
                f"  {a.kind} {a.target_type} {a.target_id}: {a.status}"
                + (f" {fmt_time(a.applied_at)}" if a.applied_at else "")
                + (f", reversed {fmt_time(a.reversed_at)}" if a.reversed_at else "")
                + (f" (the platform said: {a.last_error})" if a.last_error else "")
            )
            for a in planned.actions
        ]
        parts.append(Group(*lines))
    if detail.appeal:
        appeal = detail.appeal
        lines = [
            Text("Appeal", style="bold underline"),
            Text(f"  by {appeal.submitted_by} {fmt_time(appeal.submitted_at)}: {appeal.status}"),
            Text(wrapped(appeal.statement, "  ")),
        ]
        if appeal.reviewer:
            decided = f"{appeal.reviewer} {fmt_time(appeal.decided_at)}: {appeal.decision_reason}"
            lines.append(Text(wrapped(f"decided by {decided}", "  ")))
        parts.append(Group(*lines))
    count = len(detail.events)
    timeline = [
        Text(f"Timeline ({count} event{'' if count == 1 else 's'})", style="bold underline")
    ]
    for event in detail.events:
        timeline.extend(_event(event))
    parts.append(Group(*timeline))
    return Group(*(item for part in parts for item in (part, Text(""))))
