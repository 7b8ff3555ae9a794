"""review-appeal: a lead upholds or overturns an appealed enforcement from the UI.

Started per appeal by the deployment's trigger on ``caseward.case.submit_appeal``, or by
hand. See :mod:`flows.decisions` for the shape and :mod:`flows.hitl` for the waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from cases.enforcement import appeals
from flows.decisions import DecisionKind, decision_flow
from flows.hitl import AppealDecision


def _record(
    session: Session,
    case_id: int,
    answer: AppealDecision,
    now: datetime,
    origin: Mapping[str, str],
) -> str:
    appeals.decide_appeal(
        session,
        case_id=case_id,
        reviewer=answer.reviewer,
        overturn=answer.decision == "overturn",
        reason=answer.reason,
        now=now,  # an overturn's reversals reach the platform once it commits (decisions.py)
        origin=origin,
    )
    return answer.decision.capitalize()


APPEAL = DecisionKind(
    name="review-appeal",
    form=AppealDecision,
    waiting=lambda session, case_id: appeals.awaiting_review(session, case_id=case_id),
    record=_record,
    timeout_hours=120.0,
    description="Wait for a lead to uphold or overturn an appeal (a form on the paused run, "
    "with the developer's statement and the evidence); escalate when nobody decides in time.",
)

review_appeal = decision_flow(APPEAL)
