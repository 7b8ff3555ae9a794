"""From a passed deadline to enforcement: plan it, approve or decline it, apply it, close.

No enforcement without recorded evidence, a change request delivered to the developer and a
passed deadline, unless a lead approves an urgent enforcement with a reason. Bans and account
suspensions wait for a lead's approval (``approval_required`` in the catalogue).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.clock import readable
from cases.core.enums import CaseOutcome, CaseStatus
from cases.core.errors import GuardFailed
from cases.core.models import Case, CaseEvent, Enforcement
from cases.core.settings import get_settings
from cases.enforcement import planning
from cases.enforcement.platform.base import PlatformAdapter
from cases.lifecycle.operations import latest_change_request
from cases.lifecycle.service import get_or_raise
from cases.lifecycle.states import (
    ACTIVE_BEFORE_ENFORCEMENT,
    ENFORCEMENT_NOTICES,
    Op,
    check_transition,
)
from cases.lifecycle.write import SYSTEM, Change, origin_data, record
from cases.statements.notice import notice_context


def enforcement_or_raise(session: Session, case: Case) -> Enforcement:
    found = planning.get_for_case(session, case_id=case.id)
    if found is None:
        raise GuardFailed(f"case {case.id} has no enforcement decision")
    return found


# --- triage -----------------------------------------------------------------------------


def _require_evidence(case: Case) -> None:
    if not case.evidence:
        raise GuardFailed(f"case {case.id} has no recorded evidence; add evidence first")


def escalate(session: Session, *, case_id: int, now: datetime) -> Case:
    """The change deadline passed without compliance: plan enforcement."""
    return _escalate(session, case=get_or_raise(session, case_id=case_id, lock=True), now=now)


def _escalate(session: Session, *, case: Case, now: datetime) -> Case:
    """:func:`escalate` on a case the caller has locked (the sweeper)."""
    if case.delivery_blocked:
        raise GuardFailed(f"case {case.id}: a notice was not delivered; a lead must act first")
    if case.deadline is None or case.deadline > now:
        raise GuardFailed(f"case {case.id}: the deadline has not passed")
    _require_evidence(case)
    check_transition(Op.ESCALATE, case.status)
    reason = f"the deadline of {readable(case.deadline)} passed without the requested changes"
    planned = planning.create(
        session, case=case, reason=reason, urgent=False, approved_by=None, now=now
    )
    change = Change(
        op=Op.ESCALATE,
        actor=SYSTEM,
        reason=reason,
        now=now,
        data={"requires_approval": planned.requires_approval},  # what the trigger matches
    )
    record(session, case=case, change=change)
    return case


def approve_enforcement(
    session: Session,
    *,
    case_id: int,
    actor: str,
    reason: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """A lead approves enforcement: of a due enforcement that needs approval, or urgently.

    ``origin`` says where a decision not typed on the CLI came from (the Prefect UI form and
    its flow run); it is kept on the event.
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _approve_enforcement(
        session, case=case, actor=actor, reason=reason, now=now, origin=origin
    )


def _approve_enforcement(
    session: Session,
    *,
    case: Case,
    actor: str,
    reason: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """:func:`approve_enforcement` on a case the caller has locked (bulk decisions)."""
    _require_evidence(case)
    if case.status in ACTIVE_BEFORE_ENFORCEMENT:
        check_transition(Op.APPROVE_URGENT, case.status)
        planning.create(session, case=case, reason=reason, urgent=True, approved_by=actor, now=now)
        record(
            session,
            case=case,
            change=Change(
                op=Op.APPROVE_URGENT,
                actor=actor,
                reason=reason,
                now=now,
                fields={"urgent": True, "enforcement_approved_by": actor},
                data=origin_data(origin),
            ),
        )
        return case
    found = planning.get_for_case(session, case_id=case.id)
    if found is not None and found.approved_by:
        raise GuardFailed(f"case {case.id}: enforcement already approved by {found.approved_by}")
    record(
        session,
        case=case,
        change=Change(
            op=Op.APPROVE_ENFORCEMENT,
            actor=actor,
            reason=reason,
            now=now,
            fields={"enforcement_approved_by": actor},
            data=origin_data(origin),
        ),
    )
    enforcement_or_raise(session, case).approved_by = actor
    return case


def awaiting_approval(session: Session, *, case_id: int) -> bool:
    """Whether the case's planned enforcement is waiting for a lead's decision."""
    case = get_or_raise(session, case_id=case_id)
    planned = planning.get_for_case(session, case_id=case_id)
    return (
        case.status is CaseStatus.ENFORCEMENT_DUE
        and planned is not None
        and planned.requires_approval
        and not planned.approved_by
    )


def decline_enforcement(
    session: Session,
    *,
    case_id: int,
    actor: str,
    reason: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """A lead decides against a planned enforcement before it runs: nothing is applied."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _decline_enforcement(
        session, case=case, actor=actor, reason=reason, now=now, origin=origin
    )


def _decline_enforcement(
    session: Session,
    *,
    case: Case,
    actor: str,
    reason: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """:func:`decline_enforcement` on a case the caller has locked (bulk decisions)."""
    record(
        session,
        case=case,
        change=Change(
            op=Op.DECLINE_ENFORCEMENT,
            actor=actor,
            reason=reason,
            now=now,
            fields={"outcome": CaseOutcome.DECLINED},
            data=origin_data(origin),
            email_context={"decision_reason": reason},
        ),
    )
    planning.decline_planned(enforcement_or_raise(session, case))
    return case


def enforce(session: Session, *, case_id: int, adapter: PlatformAdapter, now: datetime) -> Case:
    """Apply the planned actions and send the notice; every fairness guard is checked here."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _enforce(session, case=case, adapter=adapter, now=now)


def _enforce(session: Session, *, case: Case, adapter: PlatformAdapter, now: datetime) -> Case:
    """:func:`enforce` on a case the caller has locked (the sweeper)."""
    check_transition(Op.ENFORCE, case.status)
    _require_evidence(case)
    decision = enforcement_or_raise(session, case)
    if decision.requires_approval and not decision.approved_by:
        raise GuardFailed(
            f"case {case.id}: {', '.join(sorted({a.kind.value for a in decision.actions}))} "
            "needs a lead's approval (caseward cases approve-enforcement)"
        )
    request = latest_change_request(session, case_id=case.id)
    if not decision.urgent:
        if request is None or request.notified_at is None:
            raise GuardFailed(f"case {case.id}: no change request was delivered to the developer")
        if request.due_at is None or request.due_at > now:
            raise GuardFailed(f"case {case.id}: the change deadline has not passed")
    planning.apply_all(decision, adapter, now=now)
    actions = [
        {"kind": a.kind.value, "target_type": a.target_type.value, "target_id": a.target_id}
        for a in decision.actions
    ]
    notices = tuple(dict.fromkeys(ENFORCEMENT_NOTICES[a.kind] for a in decision.actions))
    reasons = notice_context(
        session, case=case, enforcement=decision, settings=get_settings(), now=now
    )
    record(
        session,
        case=case,
        change=Change(
            op=Op.ENFORCE,
            actor=decision.approved_by or SYSTEM,
            reason=decision.reason,
            now=now,
            data={"actions": actions},
            emails=notices,
            email_context={
                "actions": actions,
                "reason": decision.reason,
                "urgent": decision.urgent,
                "deadline": None if decision.urgent or request is None else request.due_at,
                "changes": list(request.changes) if request is not None else [],
                "approval_reason": _approval_reason(session, case, decision),
                "statement_of_reasons": reasons,
            },
        ),
    )
    return case


def _approval_reason(session: Session, case: Case, decision: Enforcement) -> str | None:
    """The reason a lead gave when approving a due enforcement (the notice quotes it); an
    urgent enforcement's reason is its own."""
    if decision.urgent or not decision.approved_by:
        return None
    query = (
        select(CaseEvent.reason)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == Op.APPROVE_ENFORCEMENT.value)
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def close_unappealed(session: Session, *, case_id: int, now: datetime) -> Case:
    """The appeal window ended without an appeal: the case closes, enforced."""
    return _close_unappealed(
        session, case=get_or_raise(session, case_id=case_id, lock=True), now=now
    )


def _close_unappealed(session: Session, *, case: Case, now: datetime) -> Case:
    """:func:`close_unappealed` on a case the caller has locked (the sweeper)."""
    record(
        session,
        case=case,
        change=Change(
            op=Op.CLOSE,
            actor=SYSTEM,
            reason="the appeal window ended without an appeal",
            now=now,
            fields={"outcome": CaseOutcome.ENFORCED},
        ),
    )
    return case
