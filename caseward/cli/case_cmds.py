"""``caseward cases ...``: open, inspect and decide cases."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import typer

from cases.core.db import get_engine, unit_of_work
from cases.core.enums import CaseStatus, Policy, Severity
from cases.core.errors import InvalidInput
from cases.core.models import Case
from cases.core.schemas import CaseCreate
from cases.email import recovery
from cases.enforcement import planning
from cases.lifecycle import escalation, extensions, notices, operations, queries, service, sweeper
from caseward.cli import case_views
from caseward.cli.bulk import accepts_filters
from caseward.cli.common import MAX_INT, STATE, emit, err, fmt_time, out
from caseward.cli.selection import (
    AllFilter,
    CaseFilter,
    DryRun,
    SinceFilter,
    TemplateFilter,
    selection,
    settle_selected,
)

cases_app = typer.Typer(help="Open, inspect and decide enforcement cases.", no_args_is_help=True)

CaseId = Annotated[int, typer.Argument(help="The case id.", show_default=False, min=1, max=MAX_INT)]
# who reads a decision's reason: the developer in the e-mail it causes, or only the case
Reason = Annotated[
    str,
    typer.Option(
        "--reason", help="Why; e-mailed to the developers of the case.", show_default=False
    ),
]
RecordedReason = Annotated[
    str,
    typer.Option(
        "--reason",
        help="Why; recorded on the case (this step e-mails no developer).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _done(case: Case, as_json: bool) -> None:
    read = service.to_read(case)
    emit(read, as_json, lambda: f"case {read.id}: {read.status}")


@cases_app.command("open")
def open_(
    policy: Annotated[Policy, typer.Option("--policy", help="The policy broken.")],
    app_ids: Annotated[list[str], typer.Option("--app", help="An app id (repeat for more).")],
    developer_ids: Annotated[
        list[str], typer.Option("--developer", help="A developer id (repeat for more).")
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="What was found; every developer of the case reads it in the e-mails.",
            show_default=False,
        ),
    ],
    severity: Annotated[Severity, typer.Option("--severity")] = Severity.MEDIUM,
    evidence: Annotated[
        list[str] | None,
        typer.Option(
            "--evidence",
            help="An observation recorded as evidence (repeatable); the developers read it.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Open a case by hand, e.g. from a report the support team received."""
    now, actor = STATE.now(), STATE.who()
    with unit_of_work() as session:
        case = service.open_case(
            session,
            case_in=CaseCreate(
                policy=policy,
                app_ids=app_ids,
                developer_ids=developer_ids,
                reason=reason,
                severity=severity,
            ),
            actor=actor,
            now=now,
        )
        for note in evidence or []:
            service.add_evidence(session, case_id=case.id, note=note, actor=actor, now=now)
        _done(case, as_json)


@cases_app.command("list")
def list_(
    status: Annotated[CaseStatus | None, typer.Option("--status")] = None,
    policy: Annotated[Policy | None, typer.Option("--policy")] = None,
    severity: Annotated[Severity | None, typer.Option("--severity")] = None,
    assignee: Annotated[
        str | None, typer.Option("--assignee", help="Cases assigned to this lead.")
    ] = None,
    mine: Annotated[
        bool, typer.Option("--mine", help="Cases assigned to me (--actor or $USER).")
    ] = False,
    needs_decision: Annotated[
        bool,
        typer.Option(
            "--needs-decision",
            help="Cases waiting for a lead: an approval, an appeal, a compliance report to "
            "check, an undelivered notice.",
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, max=MAX_INT)] = None,
    as_json: Json = False,
) -> None:
    """List cases, oldest first: status, severity, age, assignee, deadline and what was found."""
    with unit_of_work() as session:
        rows = [
            service.to_read(c)
            for c in service.list_cases(
                session,
                status=status,
                policy=policy.value if policy else None,
                severity=severity,
                assignee=STATE.who() if mine else assignee,
                case_ids=queries.waiting_for_lead(session) if needs_decision else None,
                limit=limit,
            )
        ]
    emit(rows, as_json, lambda: case_views.case_list(rows, STATE.now()))


@cases_app.command("show")
def show(case_id: CaseId, as_json: Json = False) -> None:
    """A case, what it waits for, the changes asked, its evidence, actions and timeline."""
    with unit_of_work() as session:
        detail = queries.case_detail(session, case_id=case_id, now=STATE.now())
    emit(detail, as_json, lambda: case_views.case_detail(detail, STATE.now()))


LeadDecision = Callable[..., Case]

# each lead decision: the operation, its help, and whether the developer reads its reason
DECISIONS: dict[str, tuple[LeadDecision, str, bool]] = {
    "confirm": (
        operations.confirm,
        "Confirm a case after triage; outreach goes at the next advance.",
        False,
    ),
    "dismiss": (
        operations.dismiss,
        "Dismiss a case: no violation; the developer is not contacted.",
        False,
    ),
    "resolve": (
        operations.resolve,
        "Resolve a case: the developer complied (lead verified); the developer is told why.",
        True,
    ),
    "reject-compliance": (
        operations.reject_compliance,
        "The reported changes are not enough: a new change request, with the reason.",
        True,
    ),
}


def _decision_command(operation: LeadDecision, doc: str, told: bool) -> Callable[..., None]:
    def command(case_id: CaseId, reason: str, as_json: Json = False) -> None:
        with unit_of_work() as session:
            case = operation(
                session, case_id=case_id, actor=STATE.who(), reason=reason, now=STATE.now()
            )
            _done(case, as_json)

    command.__doc__ = doc
    command.__annotations__["reason"] = Reason if told else RecordedReason
    return command


for _name, (_operation, _doc, _told) in DECISIONS.items():
    _command = _decision_command(_operation, _doc, _told)
    if _name in ("confirm", "dismiss"):
        _command = accepts_filters(_name)(_command)
    cases_app.command(_name)(_command)


@cases_app.command("unblock-delivery")
def unblock_delivery(
    case_id: Annotated[
        int | None,
        typer.Argument(
            help="The case id (or select with filters).", show_default=False, min=1, max=MAX_INT
        ),
    ] = None,
    reason: Annotated[
        str,
        typer.Option(
            "--reason", help="Why escalation may go on; recorded on the case.", show_default=False
        ),
    ] = "",
    status: Annotated[
        CaseStatus | None, typer.Option("--status", help="Only cases in this status.")
    ] = None,
    template: TemplateFilter = None,
    case_filter: CaseFilter = None,
    since: SinceFilter = None,
    select_all: AllFilter = False,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> int:
    """A failed notice was dealt with; escalation may go on. With filters instead of an id
    (the template of the failed e-mail, when it was last tried...), every blocked case they
    select, each with its own timeline event."""
    chosen = selection(
        case_id,
        template=template,
        case_id=case_filter,
        since=since,
        select_all=select_all,
        narrowed=status is not None,
    )
    if not dry_run and not reason.strip():
        raise InvalidInput("--reason is required: why escalation may go on")
    actor, now = STATE.who(), STATE.now()
    if chosen is None:
        assert case_id is not None
        with unit_of_work() as session:
            case = notices.unblock_delivery(
                session, case_id=case_id, actor=actor, reason=reason, now=now
            )
            _done(case, as_json)
        return 0
    return settle_selected(
        "case(s) unblocked",
        dry_run=dry_run,
        as_json=as_json,
        select=lambda s: recovery.blocked_cases(s, selection=chosen, status=status),
        act=lambda s, i: notices.unblock_delivery(
            s, case_id=i, actor=actor, reason=reason, now=now
        ),
    )


@cases_app.command("extend")
@accepts_filters("extend")
def extend(
    case_id: CaseId,
    reason: Reason,
    days: Annotated[
        int | None, typer.Option("--days", min=1, max=3650, help="Default: configured.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Grant the case's one extension of its change deadline (a developer's request for
    more time, or a lead's own decision)."""
    with unit_of_work() as session:
        case = operations.extend(
            session, case_id=case_id, actor=STATE.who(), reason=reason, now=STATE.now(), days=days
        )
        _done(case, as_json)
    resume_waiting_flow(case_id, "extension-request", "grant", reason)


@cases_app.command("decline-extension")
def decline_extension(case_id: CaseId, reason: Reason, as_json: Json = False) -> None:
    """Decline a developer's request for more time: the deadline stands (the developer is
    e-mailed the reason)."""
    with unit_of_work() as session:
        case = extensions.decline_extension(
            session, case_id=case_id, actor=STATE.who(), reason=reason, now=STATE.now()
        )
        _done(case, as_json)
    resume_waiting_flow(case_id, "extension-request", "decline", reason)


@cases_app.command("request-changes")
def request_changes(
    case_id: CaseId,
    reason: RecordedReason,
    changes: Annotated[
        list[str] | None,
        typer.Option("--change", help="A required change (repeatable); default: the policy's."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Ask for specific feature changes now, without waiting for the response window."""
    with unit_of_work() as session:
        case = operations.request_changes(
            session,
            case_id=case_id,
            actor=STATE.who(),
            reason=reason,
            now=STATE.now(),
            changes=changes,
        )
        _done(case, as_json)


def _developer_answer(operation: Callable[..., Case], doc: str) -> Callable[..., None]:
    def command(
        case_id: CaseId,
        statement: Annotated[str, typer.Option("--statement", help="The developer's words.")],
        as_json: Json = False,
    ) -> None:
        with unit_of_work() as session:
            case = operation(
                session, case_id=case_id, actor=STATE.who(), statement=statement, now=STATE.now()
            )
            _done(case, as_json)

    command.__doc__ = doc
    return command


cases_app.command("acknowledge")(
    _developer_answer(operations.acknowledge, "Record that the developer acknowledged the request.")
)
cases_app.command("report-compliance")(
    _developer_answer(
        operations.report_compliance, "Record that the developer reports the changes are made."
    )
)


@cases_app.command("assign")
@accepts_filters("assign")
def assign(
    case_id: CaseId,
    assignee: Annotated[str, typer.Option("--to", help="The lead who takes the case.")],
    as_json: Json = False,
) -> None:
    """Give an open case to a lead."""
    with unit_of_work() as session:
        case = operations.assign(
            session, case_id=case_id, actor=STATE.who(), assignee=assignee, now=STATE.now()
        )
        _done(case, as_json)


@cases_app.command("add-evidence")
def add_evidence(
    case_id: CaseId,
    note: Annotated[
        str,
        typer.Option(
            "--note", help="What was observed; the developers of the case read it in e-mails."
        ),
    ],
    as_json: Json = False,
) -> None:
    """Record an observation as evidence (enforcement needs recorded evidence)."""
    with unit_of_work() as session:
        case = service.add_evidence(
            session, case_id=case_id, note=note, actor=STATE.who(), now=STATE.now()
        )
        _done(case, as_json)


@cases_app.command("approve-enforcement")
@accepts_filters(
    "approve-enforcement",
    after=lambda ids, d: _resume_each(ids, "approve-enforcement", "approve", d.reason),
)
def approve_enforcement(
    case_id: CaseId,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why; the enforcement notice quotes it to the developers.",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what it would cut off; change nothing.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Approve enforcement: a due one that needs a lead, or an urgent one before its deadline."""
    with unit_of_work() as session:
        if dry_run:
            case = service.get_or_raise(session, case_id=case_id)
            impact = planning.preview_impact(session, case=case)
            emit(impact, as_json, lambda: _impact_view(impact))
            return
        case = escalation.approve_enforcement(
            session, case_id=case_id, actor=STATE.who(), reason=reason, now=STATE.now()
        )
        _done(case, as_json)
        planned = planning.preview_impact(session, case=case)
    resume_waiting_flow(case_id, "approve-enforcement", "approve", reason)
    if not as_json:
        out.print(_what_happens_next(planned))


def _what_happens_next(planned: planning.ImpactPreview) -> str:
    """When the approved actions are applied: on the next advance-cases run (its time, when
    a Prefect server is configured), or now with ``caseward advance``."""
    counts = Counter(a["kind"].replace("_", " ") for a in planned.actions)
    actions = ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items()))
    when = ""
    if os.environ.get("PREFECT_API_URL"):
        try:
            from flows.deployments import next_scheduled_run

            at = next_scheduled_run("advance-cases")
            when = f", at about {fmt_time(at)}" if at else ""
        except Exception as exc:  # the approval is recorded; only the estimate is missing
            when = f" (its time is unknown: {type(exc).__name__})"
    return (
        f"next: {actions or 'the planned actions'} will be applied by the next advance-cases "
        f"run{when}; to apply them now, run `caseward advance`"
    )


def tell_platform(case_id: int) -> None:
    """Once a decision that lifts actions has committed, ask the platform to lift them; if it
    cannot be reached, the next ``caseward advance`` asks again (the decision stands)."""
    report = sweeper.lift_now(get_engine(), case_id=case_id, now=STATE.now())
    for why in report.failed.values():
        err.print(f"the platform was not told yet ({why}); caseward advance will try again")


@cases_app.command("decline-enforcement")
@accepts_filters(
    "decline-enforcement",
    after=lambda ids, d: _resume_each(ids, "approve-enforcement", "decline", d.reason),
)
def decline_enforcement(case_id: CaseId, reason: Reason, as_json: Json = False) -> None:
    """Decide against a planned enforcement; the case is resolved and anything the platform
    already applied is lifted."""
    with unit_of_work() as session:
        case = escalation.decline_enforcement(
            session, case_id=case_id, actor=STATE.who(), reason=reason, now=STATE.now()
        )
        _done(case, as_json)
    tell_platform(case_id)
    resume_waiting_flow(case_id, "approve-enforcement", "decline", reason)


def _impact_view(impact: planning.ImpactPreview) -> Any:
    lines = [f"  {a['kind']} {a['target_type']} {a['target_id']}" for a in impact.actions]
    return "\n".join(
        [
            f"case {impact.case_id}: enforcement would apply",
            *lines,
            f"apps cut off: {', '.join(impact.app_ids) or 'none'}",
            f"accounts suspended: {', '.join(impact.account_ids) or 'none'}",
            f"requests in the last 7 days on those apps: {impact.requests_7d:,}",
            "needs a lead's approval" if impact.requires_approval else "no approval needed",
        ]
    )


def resume_waiting_flow(
    case_id: int,
    kind: Literal["approve-enforcement", "review-appeal", "extension-request"],
    decision: str,
    reason: str,
) -> None:
    """Wake a Prefect run waiting for this decision, if a Prefect server is configured.

    The decision is already recorded; a run that is not resumed sees it when it wakes.
    """
    if not os.environ.get("PREFECT_API_URL"):
        return
    try:
        from flows.hitl import resume_waiting
    except ImportError:
        return
    try:
        if resume_waiting(case_id, kind, decision, reason, STATE.who()):
            out.print(f"resumed the waiting {kind} flow run of case {case_id}")
    except Exception as exc:  # the decision is recorded; the flow will see it when it wakes
        out.print(f"note: could not resume a waiting {kind} run ({type(exc).__name__})")


def _resume_each(
    case_ids: Sequence[int],
    kind: Literal["approve-enforcement", "review-appeal", "extension-request"],
    decision: str,
    reason: str,
) -> None:
    """After a bulk decision: wake the runs waiting for it (with a Prefect server only)."""
    if os.environ.get("PREFECT_API_URL"):
        for case_id in case_ids:
            resume_waiting_flow(case_id, kind, decision, reason)


def register(app: typer.Typer) -> None:
    app.add_typer(cases_app, name="cases")
