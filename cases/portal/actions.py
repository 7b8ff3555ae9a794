"""What a developer may do from their case page, and doing it through the lifecycle.

Each action is a lifecycle operation taken as ``developer:<id>``. A second submit of the same
form changes nothing: an action this developer already took since the case last changed
status is answered as done, and the case is locked first, so two submits at once cannot
both pass that check.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus
from cases.core.models import Appeal, Case, CaseEvent
from cases.enforcement import appeals
from cases.lifecycle import extensions, operations
from cases.lifecycle.service import get_or_raise
from cases.lifecycle.states import EVENTS, TRANSITIONS, Op

MAX_STATEMENT = 5000


class Action(StrEnum):
    """The forms of the case page; each value is the last segment of its URL."""

    ACKNOWLEDGE = "acknowledge"
    COMPLIANCE = "compliance"
    EXTENSION = "extension"
    APPEAL = "appeal"


OPS: dict[Action, Op] = {
    Action.ACKNOWLEDGE: Op.ACKNOWLEDGE,
    Action.COMPLIANCE: Op.REPORT_COMPLIANCE,
    Action.EXTENSION: Op.REQUEST_EXTENSION,
    Action.APPEAL: Op.SUBMIT_APPEAL,
}


class Outcome(StrEnum):
    DONE = "done"  # recorded now
    ALREADY = "already"  # this developer had already done it: nothing changed
    CLOSED = "closed"  # the case no longer accepts it: nothing changed


def developer_actor(developer_id: str) -> str:
    return appeals.appellant(developer_id)


def done_by(session: Session, *, case_id: int, op: Op, actor: str) -> bool:
    """Whether ``actor`` took ``op`` on the case and its status has not changed since
    (other than by that very event)."""
    latest = session.scalar(
        select(CaseEvent.seq)
        .where(CaseEvent.case_id == case_id, CaseEvent.kind == op.value, CaseEvent.actor == actor)
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )
    if latest is None:
        return False
    moved = session.scalar(
        select(CaseEvent.id)
        .where(
            CaseEvent.case_id == case_id,
            CaseEvent.seq > latest,
            CaseEvent.from_status != CaseEvent.to_status,
        )
        .limit(1)
    )
    return moved is None


def _allowed(op: Op, status: CaseStatus) -> bool:
    spec = TRANSITIONS.get(op)
    return status in (spec.sources if spec else EVENTS[op].allowed_in)


def available(session: Session, *, case: Case, developer_id: str, now: datetime) -> list[Action]:
    """The actions the case page offers this developer now, in page order."""
    actor = developer_actor(developer_id)
    offered = []
    for action, op in OPS.items():
        if not _allowed(op, case.status) or done_by(session, case_id=case.id, op=op, actor=actor):
            continue
        if action is Action.EXTENSION and not _may_ask_for_time(session, case, now):
            continue
        if action is Action.APPEAL and not _may_appeal(session, case, now):
            continue
        offered.append(action)
    return offered


def _may_ask_for_time(session: Session, case: Case, now: datetime) -> bool:
    return (
        not case.extension_granted
        and case.deadline is not None
        and now < case.deadline
        and extensions.requested_since_status(session, case_id=case.id) is None
    )


def _may_appeal(session: Session, case: Case, now: datetime) -> bool:
    appealed = session.scalar(select(Appeal.id).where(Appeal.case_id == case.id).limit(1))
    return appealed is None and (case.deadline is None or now <= case.deadline)


def submit(
    session: Session,
    *,
    case_id: int,
    developer_id: str,
    action: Action,
    statement: str,
    now: datetime,
    url: str | None = None,
) -> Outcome:
    """Take ``action`` for the developer, unless they already did or the case moved on."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    actor = developer_actor(developer_id)
    if done_by(session, case_id=case.id, op=OPS[action], actor=actor):
        return Outcome.ALREADY
    if action not in available(session, case=case, developer_id=developer_id, now=now):
        return Outcome.CLOSED
    if action is Action.COMPLIANCE:
        operations.report_compliance(
            session, case_id=case.id, actor=actor, statement=statement, now=now, url=url
        )
        return Outcome.DONE
    operation = {
        Action.ACKNOWLEDGE: operations.acknowledge,
        Action.EXTENSION: extensions.request_extension,
        Action.APPEAL: appeals.submit_appeal,
    }[action]
    operation(session, case_id=case.id, actor=actor, statement=statement, now=now)
    return Outcome.DONE
