"""From a passed deadline to enforcement: plan it, approve or decline it, apply it, close.

No enforcement without recorded evidence, a change request delivered to the developer and a
passed deadline, unless a lead approves an urgent enforcement with a reason. Bans and account
suspensions wait for a lead's approval (``approval_required`` in the catalogue).

Applying is recorded action by action (cases/enforcement/execution.py). The first actions
the platform applies enforce the case and are noticed to the developer, whatever happens to
the rest, so what is in force is always appealable; actions the platform applies later get a
notice of their own (``actions_applied``). A decision that ends the enforcement (a decline, an
overturned appeal) lifts what was applied at once for Caseward, and the platform is told
after it commits; no decision is taken while an action's answer is not recorded yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.clock import readable
from cases.core.enums import ActionStatus, CaseOutcome, CaseStatus
from cases.core.errors import GuardFailed, PlatformError
from cases.core.models import Case, CaseEvent, Enforcement
from cases.core.settings import get_settings
from cases.enforcement import execution, planning
from cases.enforcement.execution import Claim
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


def require_settled(case: Case, decision: Enforcement) -> None:
    """Refuse a decision while the platform's answer to an action is not recorded."""
    for action in decision.actions:
        if action.status is ActionStatus.APPLYING:
            raise GuardFailed(
                f"case {case.id}: the platform's answer to {action.kind.value} on "
                f"{action.target_type.value} {action.target_id} is not recorded yet; "
                "run caseward advance, then decide"
            )


def lift(
    session: Session, *, case: Case, decision: Enforcement, now: datetime
) -> list[dict[str, str]]:
    """End the enforcement: what the platform applied is lifted (told to the platform after
    the caller commits), the rest never runs; returns the actions lifted."""
    require_settled(case, decision)
    lifted = execution.lift(session, decision.actions, unapplied=ActionStatus.DECLINED)
    if lifted:
        decision.reversed_at = decision.reversed_at or now
    return [execution.describe(a) for a in lifted]


def decline_enforcement(
    session: Session,
    *,
    case_id: int,
    actor: str,
    reason: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """A lead decides against a planned enforcement: whatever the platform already applied
    (a run that stopped half-way) is lifted, the rest never runs."""
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
    decision = enforcement_or_raise(session, case)
    require_settled(case, decision)
    applied = [execution.describe(a) for a in decision.actions if a.status is ActionStatus.APPLIED]
    record(
        session,
        case=case,
        change=Change(
            op=Op.DECLINE_ENFORCEMENT,
            actor=actor,
            reason=reason,
            now=now,
            fields={"outcome": CaseOutcome.DECLINED},
            data={"reversed": applied, **origin_data(origin)},
            email_context={"decision_reason": reason, "actions": applied},
        ),
    )
    lift(session, case=case, decision=decision, now=now)
    return case


def _check_enforceable(
    session: Session, *, case: Case, decision: Enforcement, now: datetime
) -> None:
    """The fairness guards of a first enforcement: evidence, approval, notice and deadline."""
    check_transition(Op.ENFORCE, case.status)
    _require_evidence(case)
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


def claim_actions(
    session: Session, *, case: Case, worker: str, now: datetime, lease_seconds: float
) -> list[Claim]:
    """Claim what a locked case's enforcement needs from the platform, the guards first.

    A due case's planned actions; an enforced case's actions not applied yet (retried until
    the platform applies them; a refusal then fails them for good); under appeal, only the
    claims whose answer was lost; in any status, the actions a decision lifted. The caller
    commits before calling the platform.
    """
    decision = enforcement_or_raise(session, case)
    if case.status is CaseStatus.ENFORCEMENT_DUE:
        _check_enforceable(session, case=case, decision=decision, now=now)
    return execution.claim(
        session,
        decision.actions,
        case_id=case.id,
        worker=worker,
        now=now,
        lease_seconds=lease_seconds,
        planned=case.status in (CaseStatus.ENFORCEMENT_DUE, CaseStatus.ENFORCED),
        final=case.status is not CaseStatus.ENFORCEMENT_DUE,
    )


def notify_applied(session: Session, *, case: Case, now: datetime) -> bool:
    """Notice the developer of the actions applied since the last notice, once no answer is
    outstanding; the first notice enforces the case. Returns whether a notice was queued."""
    if case.status not in (CaseStatus.ENFORCEMENT_DUE, CaseStatus.ENFORCED, CaseStatus.APPEALED):
        return False
    decision = enforcement_or_raise(session, case)
    if any(a.status is ActionStatus.APPLYING for a in decision.actions):
        return False
    fresh = [a for a in decision.actions if a.status is ActionStatus.APPLIED and not a.noticed_at]
    first = case.status is CaseStatus.ENFORCEMENT_DUE
    if not fresh and (decision.actions or not first):
        return False
    actions = [execution.describe(a) for a in fresh]
    pending = [
        execution.describe(a) | {"error": a.last_error or ""}
        for a in decision.actions
        if a.status is ActionStatus.PLANNED
    ]
    request = latest_change_request(session, case_id=case.id)
    reasons = notice_context(
        session, case=case, enforcement=decision, settings=get_settings(), now=now
    )
    record(
        session,
        case=case,
        change=Change(
            op=Op.ENFORCE if first else Op.ACTIONS_APPLIED,
            actor=(decision.approved_by or SYSTEM) if first else SYSTEM,
            reason=decision.reason
            if first
            else f"the platform applied {len(fresh)} more action(s)",
            now=now,
            data={"actions": actions, "not_applied": pending},
            emails=tuple(dict.fromkeys(ENFORCEMENT_NOTICES[a.kind] for a in fresh)),
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
    for action in fresh:
        action.noticed_at = now
    decision.executed_at = decision.executed_at or now
    return True


def enforce(session: Session, *, case_id: int, adapter: PlatformAdapter, now: datetime) -> Case:
    """Apply a due enforcement and notice it, in the caller's one unit of work.

    For the embedded registry (and tests): the sweeper instead commits each claim before
    calling the platform and records each answer on its own (``sweeper.enforce_batch``).
    Nothing applied at all raises :class:`PlatformError` with the platform's answers.
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    check_transition(Op.ENFORCE, case.status)
    claims = claim_actions(
        session,
        case=case,
        worker=execution.worker_id(),
        now=now,
        lease_seconds=get_settings().platform.claim_lease_seconds,
    )
    outcomes = [execution.call(adapter, claimed) for claimed in claims]
    for outcome in outcomes:
        execution.record(session, outcome, now=now)
    if not notify_applied(session, case=case, now=now):
        errors = [o.error for o in outcomes if o.error]
        raise PlatformError(f"case {case.id}: nothing was applied ({'; '.join(errors)})")
    return case


def close_unappealed(session: Session, *, case_id: int, now: datetime) -> Case:
    """The appeal window ended without an appeal: the case closes, enforced."""
    return _close_unappealed(
        session, case=get_or_raise(session, case_id=case_id, lock=True), now=now
    )


def _close_unappealed(session: Session, *, case: Case, now: datetime) -> Case:
    """:func:`close_unappealed` on a case the caller has locked (the sweeper)."""
    decision = enforcement_or_raise(session, case)
    require_settled(case, decision)
    execution.settle_unsent(session, decision.actions)
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
