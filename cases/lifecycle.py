"""The operations of the enforcement lifecycle, each a guarded change through service.record.

Fairness lives here, not in the CLI or flows: no enforcement without evidence, a delivered
notice and a passed deadline (unless a lead approves an urgent enforcement with a reason);
a lead's decision always carries a reason; deadlines start when the notice is delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import enforcement as enforcement_service
from cases.catalog import get_catalog
from cases.core.errors import GuardFailed
from cases.core.models import Case, ChangeRequest, Enforcement
from cases.core.settings import get_settings
from cases.platform.base import PlatformAdapter
from cases.service import get_or_raise, record_event, require_lead, transition
from cases.states import (
    ACTIVE_BEFORE_ENFORCEMENT,
    ENFORCEMENT_NOTICES,
    CaseStatus,
    Op,
    check_transition,
)

SYSTEM = "caseward"


def next_reminder(
    deadline: datetime, offsets_days: Sequence[int], now: datetime
) -> datetime | None:
    """The first reminder time still ahead of ``now``, or None."""
    times = sorted(deadline - timedelta(days=d) for d in offsets_days)
    return next((t for t in times if t > now), None)


def latest_change_request(session: Session, *, case_id: int) -> ChangeRequest | None:
    query = (
        select(ChangeRequest)
        .where(ChangeRequest.case_id == case_id)
        .order_by(ChangeRequest.id.desc())
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def enforcement_or_raise(session: Session, case: Case) -> Enforcement:
    found = enforcement_service.get_for_case(session, case_id=case.id)
    if found is None:
        raise GuardFailed(f"case {case.id} has no enforcement decision")
    return found


# --- triage -----------------------------------------------------------------------------


def confirm(session: Session, *, case_id: int, actor: str, reason: str, now: datetime) -> Case:
    case = get_or_raise(session, case_id=case_id, lock=True)
    transition(session, case=case, op=Op.CONFIRM, actor=actor, reason=reason, now=now)
    return case


def dismiss(session: Session, *, case_id: int, actor: str, reason: str, now: datetime) -> Case:
    case = get_or_raise(session, case_id=case_id, lock=True)
    transition(
        session,
        case=case,
        op=Op.DISMISS,
        actor=actor,
        reason=reason,
        now=now,
        changes={"outcome": "dismissed"},
    )
    return case


def assign(session: Session, *, case_id: int, actor: str, assignee: str, now: datetime) -> Case:
    """Give an open case to a lead."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    record_event(
        session,
        case=case,
        op=Op.ASSIGN,
        actor=actor,
        reason=f"assigned to {assignee}",
        now=now,
        changes={"assignee": assignee},
    )
    return case


# --- outreach and change requests -------------------------------------------------------


def send_outreach(session: Session, *, case: Case, now: datetime) -> Case:
    """Tell the developer what was found; the response window starts on delivery."""
    transition(
        session,
        case=case,
        op=Op.SEND_OUTREACH,
        actor=SYSTEM,
        reason="outreach sent to the developer with the evidence",
        now=now,
    )
    return case


def _change_request(
    session: Session,
    *,
    case: Case,
    op: Op,
    actor: str,
    reason: str,
    now: datetime,
    changes: Sequence[str],
    context: dict[str, object] | None = None,
) -> Case:
    """A new change request and the move that sends it; its deadline starts on delivery."""
    check_transition(op, case.status)
    asked = list(changes)
    session.add(ChangeRequest(case_id=case.id, changes=asked, requested_at=now))
    transition(
        session,
        case=case,
        op=op,
        actor=actor,
        reason=reason,
        now=now,
        data={"changes": asked},
        email_context={"changes": asked, **(context or {})},
    )
    return case


def request_changes(
    session: Session,
    *,
    case: Case,
    actor: str,
    reason: str,
    now: datetime,
    changes: Sequence[str] | None = None,
) -> Case:
    """Ask for specific feature changes (the policy's defaults unless a lead names them)."""
    if actor != SYSTEM:
        require_lead(actor)
    asked = list(changes) if changes else get_catalog().entry(case.policy).required_changes
    return _change_request(
        session,
        case=case,
        op=Op.REQUEST_CHANGES,
        actor=actor,
        reason=reason,
        now=now,
        changes=asked,
    )


def acknowledge(
    session: Session, *, case_id: int, actor: str, statement: str, now: datetime
) -> Case:
    """The developer acknowledges the request; the deadline is unchanged."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    record_event(session, case=case, op=Op.ACKNOWLEDGE, actor=actor, reason=statement, now=now)
    _answer(session, case_id=case.id, response="acknowledged", text=statement, now=now)
    return case


def report_compliance(
    session: Session, *, case_id: int, actor: str, statement: str, now: datetime
) -> Case:
    """The developer says the changes are made; no deadline runs while a lead verifies."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    transition(session, case=case, op=Op.REPORT_COMPLIANCE, actor=actor, reason=statement, now=now)
    _answer(session, case_id=case.id, response="compliance_reported", text=statement, now=now)
    return case


def _answer(session: Session, *, case_id: int, response: str, text: str, now: datetime) -> None:
    request = latest_change_request(session, case_id=case_id)
    if request is not None:
        request.response, request.response_text, request.responded_at = response, text, now


def reject_compliance(
    session: Session, *, case_id: int, actor: str, reason: str, now: datetime
) -> Case:
    """A lead finds the reported changes incomplete: a new change request, with the reason.

    Its deadline starts when it is delivered, like any change request, so a developer is
    never enforced on without having been told what is still missing.
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    previous = latest_change_request(session, case_id=case.id)
    asked = previous.changes if previous else get_catalog().entry(case.policy).required_changes
    return _change_request(
        session,
        case=case,
        op=Op.REJECT_COMPLIANCE,
        actor=actor,
        reason=reason,
        now=now,
        changes=asked,
        context={"decision_reason": reason},
    )


def resolve(session: Session, *, case_id: int, actor: str, reason: str, now: datetime) -> Case:
    """A lead verifies compliance (or finds no further action needed)."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    transition(
        session,
        case=case,
        op=Op.RESOLVE,
        actor=actor,
        reason=reason,
        now=now,
        changes={"outcome": "resolved"},
        email_context={"decision_reason": reason},
    )
    return case


def extend(
    session: Session,
    *,
    case_id: int,
    actor: str,
    reason: str,
    now: datetime,
    days: int | None = None,
) -> Case:
    """Grant the one extension a case may have."""
    settings = get_settings()
    case = get_or_raise(session, case_id=case_id, lock=True)
    if case.extension_granted:
        raise GuardFailed(f"case {case.id} already had its one extension")
    if case.status is CaseStatus.CHANGES_REQUESTED and case.deadline is None:
        raise GuardFailed(f"case {case.id}: the change request has not been delivered yet")
    old = case.deadline
    new = (old or now) + timedelta(days=days or settings.deadlines.extension_days)
    record_event(
        session,
        case=case,
        op=Op.EXTEND,
        actor=actor,
        reason=reason,
        now=now,
        changes={
            "deadline": new,
            "extension_granted": True,
            "next_reminder_at": next_reminder(new, settings.deadlines.reminder_offsets_days, now),
        },
        email_context={"old_deadline": old, "new_deadline": new, "decision_reason": reason},
    )
    request = latest_change_request(session, case_id=case.id)
    if request is not None:
        request.due_at = new
    return case


def send_reminder(session: Session, *, case: Case, now: datetime) -> Case:
    offsets = get_settings().deadlines.reminder_offsets_days
    if case.deadline is None:
        raise GuardFailed(f"case {case.id} has no running deadline to remind of")
    record_event(
        session,
        case=case,
        op=Op.REMINDER_SENT,
        actor=SYSTEM,
        reason=f"reminder: changes due {case.deadline.isoformat()}",
        now=now,
        changes={"next_reminder_at": next_reminder(case.deadline, offsets, now)},
        email_context={"deadline": case.deadline},
    )
    return case


# --- enforcement --------------------------------------------------------------------------


def _require_evidence(case: Case) -> None:
    if not case.evidence:
        raise GuardFailed(f"case {case.id} has no recorded evidence; add evidence first")


def escalate(session: Session, *, case: Case, now: datetime) -> Case:
    """The change deadline passed without compliance: plan enforcement."""
    if case.delivery_blocked:
        raise GuardFailed(f"case {case.id}: a notice was not delivered; a lead must act first")
    if case.deadline is None or case.deadline > now:
        raise GuardFailed(f"case {case.id}: the deadline has not passed")
    _require_evidence(case)
    check_transition(Op.ESCALATE, case.status)
    reason = f"the deadline of {case.deadline.isoformat()} passed without the requested changes"
    enforcement_service.create(
        session, case=case, reason=reason, urgent=False, approved_by=None, now=now
    )
    transition(session, case=case, op=Op.ESCALATE, actor=SYSTEM, reason=reason, now=now)
    return case


def approve_enforcement(
    session: Session, *, case_id: int, actor: str, reason: str, now: datetime
) -> Case:
    """A lead approves enforcement: of a due enforcement that needs approval, or urgently."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    _require_evidence(case)
    if case.status in ACTIVE_BEFORE_ENFORCEMENT:
        check_transition(Op.APPROVE_URGENT, case.status)
        enforcement_service.create(
            session, case=case, reason=reason, urgent=True, approved_by=actor, now=now
        )
        transition(
            session,
            case=case,
            op=Op.APPROVE_URGENT,
            actor=actor,
            reason=reason,
            now=now,
            changes={"urgent": True, "enforcement_approved_by": actor},
        )
        return case
    found = enforcement_service.get_for_case(session, case_id=case.id)
    if found is not None and found.approved_by:
        raise GuardFailed(f"case {case.id}: enforcement already approved by {found.approved_by}")
    record_event(
        session,
        case=case,
        op=Op.APPROVE_ENFORCEMENT,
        actor=actor,
        reason=reason,
        now=now,
        changes={"enforcement_approved_by": actor},
    )
    enforcement_or_raise(session, case).approved_by = actor
    return case


def awaiting_approval(session: Session, *, case_id: int) -> bool:
    """Whether the case's planned enforcement is waiting for a lead's decision."""
    case = get_or_raise(session, case_id=case_id)
    planned = enforcement_service.get_for_case(session, case_id=case_id)
    return (
        case.status is CaseStatus.ENFORCEMENT_DUE
        and planned is not None
        and planned.requires_approval
        and not planned.approved_by
    )


def decline_enforcement(
    session: Session, *, case_id: int, actor: str, reason: str, now: datetime
) -> Case:
    """A lead decides against a planned enforcement before it runs: nothing is applied."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    transition(
        session,
        case=case,
        op=Op.DECLINE_ENFORCEMENT,
        actor=actor,
        reason=reason,
        now=now,
        changes={"outcome": "declined"},
        email_context={"decision_reason": reason},
    )
    return case


def enforce(session: Session, *, case: Case, adapter: PlatformAdapter, now: datetime) -> Case:
    """Apply the planned actions and send the notice; every fairness guard is checked here."""
    check_transition(Op.ENFORCE, case.status)
    _require_evidence(case)
    decision = enforcement_or_raise(session, case)
    if decision.requires_approval and not decision.approved_by:
        raise GuardFailed(
            f"case {case.id}: {', '.join(sorted({a.kind.value for a in decision.actions}))} "
            "needs a lead's approval (caseward cases approve-enforcement)"
        )
    if not decision.urgent:
        request = latest_change_request(session, case_id=case.id)
        if request is None or request.notified_at is None:
            raise GuardFailed(f"case {case.id}: no change request was delivered to the developer")
        if request.due_at is None or request.due_at > now:
            raise GuardFailed(f"case {case.id}: the change deadline has not passed")
    enforcement_service.apply_all(decision, adapter, now=now)
    actions = [
        {"kind": a.kind.value, "target_type": a.target_type, "target_id": a.target_id}
        for a in decision.actions
    ]
    notices = tuple(dict.fromkeys(ENFORCEMENT_NOTICES[a.kind] for a in decision.actions))
    transition(
        session,
        case=case,
        op=Op.ENFORCE,
        actor=decision.approved_by or SYSTEM,
        reason=decision.reason,
        now=now,
        data={"actions": actions},
        emails=notices,
        email_context={"actions": actions, "reason": decision.reason},
    )
    return case


def close_unappealed(session: Session, *, case: Case, now: datetime) -> Case:
    transition(
        session,
        case=case,
        op=Op.CLOSE,
        actor=SYSTEM,
        reason="the appeal window ended without an appeal",
        now=now,
        changes={"outcome": "enforced"},
    )
    return case
