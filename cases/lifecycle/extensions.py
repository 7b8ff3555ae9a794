"""A developer's request for more time, and a lead's answer to it.

A developer may ask once per change request, while its deadline runs and before any
extension was granted. The request waits for a lead: ``operations.extend`` grants it (the
case's one extension), :func:`decline_extension` declines it; either way the developer is
e-mailed. While a request waits, the deadline does not escalate: a developer who asked in
time gets an answer before any enforcement.

Whether a request waits is read from the case's events (no column of its own): the latest of
its extension events and status changes is a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, ScalarSelect, func, or_, select
from sqlalchemy.orm import Session

from cases.core.clock import readable
from cases.core.enums import CaseStatus
from cases.core.errors import GuardFailed
from cases.core.models import Case, CaseEvent
from cases.lifecycle.operations import latest_changes_asked
from cases.lifecycle.service import get_or_raise
from cases.lifecycle.states import Op, check_event
from cases.lifecycle.write import Change, origin_data, record

ANSWERS = (Op.EXTEND.value, Op.DECLINE_EXTENSION.value)


def _latest_kind(*kinds: str) -> ScalarSelect[str]:
    """The kind of the case's latest event among ``kinds`` and status changes."""
    return (
        select(CaseEvent.kind)
        .where(
            CaseEvent.case_id == Case.id,
            or_(CaseEvent.kind.in_(kinds), CaseEvent.from_status != CaseEvent.to_status),
        )
        .order_by(CaseEvent.seq.desc())
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )


def awaiting_clause() -> ColumnElement[bool]:
    """SQL: the case has a request for more time no lead has answered yet."""
    latest = _latest_kind(Op.REQUEST_EXTENSION.value, *ANSWERS)
    return (Case.status == CaseStatus.CHANGES_REQUESTED) & (
        func.coalesce(latest, "") == Op.REQUEST_EXTENSION.value
    )


def awaiting_decision(session: Session, *, case_id: int) -> bool:
    """Whether case ``case_id`` waits for a lead to answer a request for more time."""
    return bool(session.scalar(select(Case.id).where(Case.id == case_id, awaiting_clause())))


def requested_at_clause() -> ScalarSelect[datetime]:
    """SQL: when the case's latest request for more time was made."""
    return (
        select(func.max(CaseEvent.at))
        .where(CaseEvent.case_id == Case.id, CaseEvent.kind == Op.REQUEST_EXTENSION.value)
        .correlate(Case)
        .scalar_subquery()
    )


def requested_since_status(session: Session, *, case_id: int) -> CaseEvent | None:
    """The request for more time made since the case entered its status, if any."""
    entered = (
        select(func.max(CaseEvent.seq))
        .where(CaseEvent.case_id == case_id, CaseEvent.from_status != CaseEvent.to_status)
        .scalar_subquery()
    )
    query = (
        select(CaseEvent)
        .where(
            CaseEvent.case_id == case_id,
            CaseEvent.kind == Op.REQUEST_EXTENSION.value,
            CaseEvent.seq > func.coalesce(entered, 0),
        )
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def request_extension(
    session: Session, *, case_id: int, actor: str, statement: str, now: datetime
) -> Case:
    """A developer asks for more time to make the changes; a lead decides."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    check_event(Op.REQUEST_EXTENSION, case.status)
    if case.extension_granted:
        raise GuardFailed(f"case {case.id} already had its one extension")
    if case.deadline is None:
        raise GuardFailed(f"case {case.id}: the change request has not been delivered yet")
    if now >= case.deadline:
        raise GuardFailed(f"case {case.id}: the deadline passed on {readable(case.deadline)}")
    if requested_since_status(session, case_id=case.id) is not None:
        raise GuardFailed(f"case {case.id}: more time was already asked for this change request")
    asked = latest_changes_asked(session, case)
    record(
        session,
        case=case,
        change=Change(
            op=Op.REQUEST_EXTENSION,
            actor=actor,
            reason=statement,
            now=now,
            email_context={"deadline": case.deadline, "changes": asked},
        ),
    )
    return case


def decline_extension(
    session: Session,
    *,
    case_id: int,
    actor: str,
    reason: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """A lead declines the request for more time: the deadline stands, the developer is told
    why."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    check_event(Op.DECLINE_EXTENSION, case.status)
    if not awaiting_decision(session, case_id=case.id):
        raise GuardFailed(f"case {case.id} has no request for more time to decide")
    asked = latest_changes_asked(session, case)
    record(
        session,
        case=case,
        change=Change(
            op=Op.DECLINE_EXTENSION,
            actor=actor,
            reason=reason,
            now=now,
            data=origin_data(origin),
            email_context={"deadline": case.deadline, "decision_reason": reason, "changes": asked},
        ),
    )
    return case
