"""Leads' decisions on many cases: ``cases confirm|dismiss|assign|approve-enforcement|
decline-enforcement|extend`` take filters instead of a case id.

:func:`accepts_filters` gives a single-case command the filter options. With an id, the
command runs as before; with filters, it selects the cases (``--dry-run`` shows how many and
the first of them, and changes nothing), asks for ``--yes`` above
:data:`CONFIRM_ABOVE` cases, and takes the decision on each through
:mod:`cases.leads.bulk`: the same domain operation, one event and its e-mails per case, a
refused case reported (exit 1) while the others go through.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from cases.core.clock import parse_instant
from cases.core.db import get_engine, unit_of_work
from cases.core.enums import CaseStatus, Policy, Severity
from cases.core.errors import InvalidInput, UsageError
from cases.leads import bulk
from cases.lifecycle import operations, service, write
from caseward.cli import case_views
from caseward.cli.common import MAX_INT, STATE, emit, spinner

# acting on more cases than this needs --yes
CONFIRM_ABOVE = 50
# cases a dry run shows (--json lists every id)
SHOWN = 10
# refusals listed in the human output (--json lists every one)
LISTED = 20

DONE = {
    "confirm": "confirmed",
    "dismiss": "dismissed",
    "assign": "assigned",
    "approve-enforcement": "approved for enforcement",
    "decline-enforcement": "declined for enforcement",
    "extend": "extended",
}
FILTER_FLAGS = "--policy, --status, --min-score, --severity, --opened-before, --ids-from or --limit"

OptionalCaseId = Annotated[
    int | None,
    typer.Argument(
        help="The case id (or select cases with filters).", show_default=False, min=1, max=MAX_INT
    ),
]
PolicyFilter = Annotated[Policy | None, typer.Option("--policy", help="Only cases of this policy.")]
StatusFilter = Annotated[
    CaseStatus | None,
    typer.Option(
        "--status", help="Only cases in this status (default: those the decision applies to)."
    ),
]
MinScore = Annotated[
    float | None, typer.Option("--min-score", help="Only cases whose score is at least this.")
]
SeverityFilter = Annotated[
    Severity | None, typer.Option("--severity", help="Only cases of this severity.")
]
OpenedBefore = Annotated[
    str | None,
    typer.Option(
        "--opened-before",
        metavar="DATE",
        help="Only cases opened before this date or time (ISO 8601; a date is 00:00 UTC).",
    ),
]
IdsFrom = Annotated[
    Path | None,
    typer.Option(
        "--ids-from",
        metavar="FILE",
        help="Only the case ids in FILE (whitespace or commas, # comments; - reads stdin); "
        "each is tried, whatever its status, and a refusal is reported.",
    ),
]
Limit = Annotated[
    int | None,
    typer.Option("--limit", min=1, max=MAX_INT, help="At most this many cases, oldest first."),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Count the cases and show the first; change nothing.")
]
Yes = Annotated[
    bool, typer.Option("--yes", help=f"Act on more than {CONFIRM_ABOVE} cases at once.")
]


@dataclass(frozen=True)
class BulkOptions:
    """The selection options a bulk-capable command adds to its own."""

    policy: Policy | None = None
    status: CaseStatus | None = None
    min_score: float | None = None
    severity: Severity | None = None
    opened_before: str | None = None
    ids_from: Path | None = None
    limit: int | None = None
    dry_run: bool = False
    yes: bool = False
    case_ids: tuple[int, ...] | None = None  # one named id, for a dry run of one case

    def selects(self) -> bool:
        """Whether any filter was given (``--dry-run`` and ``--yes`` alone select nothing)."""
        return any(
            value is not None
            for value in (
                self.policy,
                self.status,
                self.min_score,
                self.severity,
                self.opened_before,
                self.ids_from,
                self.limit,
            )
        )

    def case_filter(self) -> bulk.CaseFilter:
        """The domain's filter; a malformed date or ids file is bad input (exit 2)."""
        before = None
        if self.opened_before is not None:
            try:
                before = parse_instant(self.opened_before)
            except ValueError as exc:
                raise InvalidInput(
                    f"--opened-before: {self.opened_before!r} is not an ISO 8601 date ({exc})"
                ) from exc
        ids = read_ids(self.ids_from) if self.ids_from is not None else self.case_ids
        return bulk.CaseFilter(
            policy=self.policy,
            status=self.status,
            min_score=self.min_score,
            severity=self.severity,
            opened_before=before,
            case_ids=ids,
            limit=self.limit,
        )


_ANNOTATIONS: dict[str, Any] = {
    "policy": PolicyFilter,
    "status": StatusFilter,
    "min_score": MinScore,
    "severity": SeverityFilter,
    "opened_before": OpenedBefore,
    "ids_from": IdsFrom,
    "limit": Limit,
    "dry_run": DryRun,
    "yes": Yes,
}
_OPTIONS = [
    inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=_ANNOTATIONS[f.name]
    )
    for f in fields(BulkOptions)
    if f.name in _ANNOTATIONS
]

_TOKEN = re.compile(r"[^\s,]+")
_ID = re.compile(r"[0-9]{1,19}")


def read_ids(path: Path) -> tuple[int, ...]:
    """The case ids in ``path`` (``-``: stdin): whitespace or commas between them, ``#``
    starts a comment. A token that is not an id is refused with its line and column."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"--ids-from {path}: cannot read it ({exc})") from exc
    ids: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for token in _TOKEN.finditer(line.split("#", 1)[0]):
            value = token.group()
            if not _ID.fullmatch(value) or not 1 <= int(value) <= MAX_INT:
                raise InvalidInput(
                    f"{path}:{number}:{token.start() + 1}: expected a case id (a whole number "
                    f"from 1), found {value[:30]!r}"
                )
            ids.append(int(value))
    if not ids:
        raise InvalidInput(f"{path}: no case ids in it")
    return tuple(ids)


After = Callable[[Sequence[int], bulk.DecisionInput], None]


def accepts_filters(
    decision: str, *, after: After | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give the single-case command of ``decision`` the filter options.

    The command's ``case_id`` becomes optional; its other parameters (``--reason``, ``--to``,
    ``--days``, ``--json``) serve both ways. ``after`` runs on the decided cases once their
    decisions are committed (waking the Prefect runs that wait for them).
    """

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own_dry_run = "dry_run" in signature.parameters
        params = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            if p.name != "case_id"
            else p.replace(
                kind=inspect.Parameter.KEYWORD_ONLY, annotation=OptionalCaseId, default=None
            )
            for p in signature.parameters.values()
        ]
        added = [p.name for p in _OPTIONS if p.name not in signature.parameters]
        params += [p for p in _OPTIONS if p.name in added]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            options = BulkOptions(
                **{p.name: kwargs.get(p.name, p.default) for p in _OPTIONS},
            )
            for name in added:
                kwargs.pop(name)
            case_id = kwargs["case_id"]
            if options.selects():
                if case_id is not None:
                    raise InvalidInput(f"give a case id or filters ({FILTER_FLAGS}), not both")
                return decide_selected(decision, options, kwargs, after)
            if case_id is None:
                raise InvalidInput(f"name a case id, or select cases with {FILTER_FLAGS}")
            if options.dry_run and not own_dry_run:
                return decide_selected(decision, replace(options, case_ids=(case_id,)), kwargs)
            return command(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        wrapper.__doc__ = (command.__doc__ or "") + (
            " With filters instead of an id, every case they select, each with its own event "
            f"and e-mails; --dry-run shows them first, more than {CONFIRM_ABOVE} need --yes, "
            "and a refused case is reported (exit 1) while the others go through."
        )
        return wrapper

    return wrap


def decide_selected(
    decision: str, options: BulkOptions, kwargs: dict[str, Any], after: After | None = None
) -> int:
    """Select the cases, then show them (``--dry-run``) or decide each; the exit code."""
    as_json = bool(kwargs.get("as_json"))
    inputs = bulk.DecisionInput(
        actor=STATE.who(),
        now=STATE.now(),
        reason=kwargs.get("reason") or "",
        assignee=kwargs.get("assignee"),
        days=kwargs.get("days"),
    )
    write.require_lead(inputs.actor)  # once, not once per case: every one is a lead's
    if inputs.assignee is not None:
        operations.check_assignee(inputs.assignee)
    filters = options.case_filter()
    with unit_of_work() as session:
        selected = bulk.select_cases(session, decision=decision, filters=filters)
        first = [
            service.to_read(c) for c in service.get_many(session, case_ids=selected.ids[:SHOWN])
        ]
    count = len(selected.ids)
    if options.dry_run:
        shown = {
            "dry_run": True,
            "decision": decision,
            "count": count,
            "applicable": selected.applicable,
            "ids": selected.ids,
            "missing": selected.missing,
            "cases": first,
        }
        emit(shown, as_json, lambda: _dry_run_view(decision, selected, first))
        return 0
    if count > CONFIRM_ABOVE and not options.yes:
        raise UsageError(
            f"{count:,} cases match: acting on more than {CONFIRM_ABOVE} at once needs --yes "
            "(see them first with --dry-run); nothing changed"
        )
    with spinner(decision) as update:
        outcome = bulk.decide(
            get_engine(),
            decision,
            selected.ids,
            inputs=inputs,
            on_batch=lambda o: update(f"{len(o.done) + len(o.refused):,} of {count:,} cases"),
        )
    outcome.refused.update((i, f"no case with id {i}") for i in selected.missing)
    if after is not None and outcome.done:
        after(outcome.done, inputs)
    result = {
        "dry_run": False,
        "decision": decision,
        "count": count,
        "done": outcome.done,
        "refused": outcome.refused,
        "stopped": outcome.stopped,
    }
    emit(result, as_json, lambda: _outcome_view(decision, outcome))
    return 1 if outcome.refused or outcome.stopped else 0


def _dry_run_view(decision: str, selected: bulk.Selected, first: Sequence[Any]) -> RenderableType:
    count = len(selected.ids)
    head = f"{count:,} case(s) match (dry run: nothing changed)"
    if count and selected.applicable == count:
        head += f"; they would be {DONE[decision]}"
    elif count:
        head += (
            f"; {selected.applicable:,} would be {DONE[decision]}, "
            f"{count - selected.applicable:,} would be refused (their status)"
        )
    parts: list[RenderableType] = [Text(head, style="bold")]
    if selected.missing:
        parts.append(Text(f"no such case: {', '.join(map(str, selected.missing[:LISTED]))}"))
    if first:
        more = f" (the first {len(first)})" if count > len(first) else ""
        parts.append(Text(f"cases{more}:"))
        parts.append(case_views.case_list(first, STATE.now()))
    return Group(*parts)


def _outcome_view(decision: str, outcome: bulk.BulkOutcome) -> RenderableType:
    lines = [f"{len(outcome.done):,} case(s) {DONE[decision]}"]
    if outcome.refused:
        lines[0] += f"; {len(outcome.refused):,} refused:"
        lines += [f"  case {i}: {why}" for i, why in list(outcome.refused.items())[:LISTED]]
        if len(outcome.refused) > LISTED:
            lines.append(f"  … and {len(outcome.refused) - LISTED:,} more (--json lists all)")
    if outcome.stopped:
        lines.append(f"stopped early, the rest unchanged: {outcome.stopped}")
    return Text("\n".join(lines))
