"""Appeals: the developer appeals an enforcement once, within its window; another lead decides.

An overturned decision lifts every applied action: each app and account gets back the status
its other actions in force imply (cases/enforcement/standing.py). An upheld one gives up what
the platform never applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.clock import readable
from cases.core.enums import ActionStatus, AppealStatus, CaseOutcome, CaseStatus
from cases.core.errors import GuardFailed, InvalidInput
from cases.core.models import Appeal, Case
from cases.enforcement import execution
from cases.lifecycle.escalation import enforcement_or_raise, lift, require_settled
from cases.lifecycle.service import get_or_raise
from cases.lifecycle.states import Op, check_transition
from cases.lifecycle.write import Change, origin_data, record


def appellant(developer_id: str) -> str:
    """How an appeal a lead entered for a developer names the developer as its author."""
    return f"developer:{developer_id}"


def submit_appeal(
    session: Session,
    *,
    case_id: int,
    actor: str,
    statement: str,
    now: datetime,
    developer_id: str | None = None,
) -> Case:
    """The developer appeals the enforcement: once, within the appeal window.

    ``developer_id``: a lead enters the appeal a developer of the case sent (by e-mail, say);
    the developer is recorded as the appellant and ``actor`` as who entered it.
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    entered_by = None
    if developer_id is not None:
        if developer_id not in {d.id for d in case.developers}:
            raise InvalidInput(f"developer {developer_id} is not part of case {case.id}")
        actor, entered_by = appellant(developer_id), actor
    check_transition(Op.SUBMIT_APPEAL, case.status)
    decision = enforcement_or_raise(session, case)
    if case.deadline is not None and now > case.deadline:
        raise GuardFailed(f"case {case.id}: the appeal window closed on {readable(case.deadline)}")
    if session.scalar(select(Appeal.id).where(Appeal.enforcement_id == decision.id)):
        raise GuardFailed(f"case {case.id}: this enforcement was already appealed")
    session.add(
        Appeal(
            enforcement_id=decision.id,
            case_id=case.id,
            statement=statement,
            submitted_by=actor,
            submitted_at=now,
        )
    )
    record(
        session,
        case=case,
        change=Change(
            op=Op.SUBMIT_APPEAL,
            actor=actor,
            reason=statement,
            now=now,
            data={"entered_by": entered_by} if entered_by else {},
        ),
    )
    return case


def awaiting_review(session: Session, *, case_id: int) -> bool:
    """Whether the case has an appeal nobody has decided yet."""
    return get_or_raise(session, case_id=case_id).status is CaseStatus.APPEALED


def decide_appeal(
    session: Session,
    *,
    case_id: int,
    reviewer: str,
    overturn: bool,
    reason: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """A lead other than the enforcement's approver upholds or overturns it.

    ``origin``: where a decision not typed on the CLI came from (kept on the event).

    An overturn lifts every applied action at once for Caseward; the platform is told once
    the caller commits (``sweeper.enforce_batch``, run by the command and by ``advance``),
    so a failing platform delays the reversal, never the decision.
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    op = Op.OVERTURN if overturn else Op.UPHOLD
    check_transition(op, case.status)
    decision = enforcement_or_raise(session, case)
    if decision.approved_by and decision.approved_by == reviewer:
        raise GuardFailed(
            f"case {case.id}: {reviewer} approved this enforcement; "
            "another lead must decide the appeal"
        )
    require_settled(case, decision)
    appeal = session.scalars(select(Appeal).where(Appeal.enforcement_id == decision.id)).one()
    restored = [
        execution.describe(a)
        for a in decision.actions
        if overturn and a.status is ActionStatus.APPLIED
    ]
    record(
        session,
        case=case,
        change=Change(
            op=op,
            actor=reviewer,
            reason=reason,
            now=now,
            fields={"outcome": CaseOutcome.OVERTURNED if overturn else CaseOutcome.UPHELD},
            data=origin_data(origin),
            email_context={"decision_reason": reason, "actions": restored},
        ),
    )
    if overturn:
        lift(session, case=case, decision=decision, now=now)
    else:
        execution.settle_unsent(session, decision.actions)
    appeal.status = AppealStatus.OVERTURNED if overturn else AppealStatus.UPHELD
    appeal.decision_reason, appeal.reviewer, appeal.decided_at = reason, reviewer, now
    return case
