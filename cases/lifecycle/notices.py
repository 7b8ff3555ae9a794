"""What delivery tells the lifecycle: a notice went out, failed, or may have gone out.

A delivered notice starts the timer of the status it entered; a failed one blocks the case's
escalation until a lead acts. Called by the outbox, in the transaction that records the
delivery.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.clock import readable
from cases.core.enums import CaseStatus, OutboxStatus
from cases.core.errors import GuardFailed
from cases.core.models import Case, CaseEvent, OutboxMessage
from cases.core.settings import get_settings
from cases.lifecycle.escalation import enforcement_or_raise
from cases.lifecycle.operations import latest_change_request, next_reminder
from cases.lifecycle.service import get_or_raise
from cases.lifecycle.states import TIMERS, Op
from cases.lifecycle.write import SYSTEM, Change, record


def notice_delivered(
    session: Session, *, case_id: int, event_id: int, sent_at: datetime, now: datetime
) -> None:
    """Start the timer of the status a notice entered, once all its e-mails are sent.

    Idempotent: later calls, reminders and notices of an earlier status change nothing.
    The case is locked before the count, so two deliveries recording the last two e-mails
    of one notice at once cannot both see the other's as unsent (the second waits).
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    unsent, last_sent = session.execute(
        select(
            func.count().filter(OutboxMessage.status != OutboxStatus.SENT),
            func.max(OutboxMessage.sent_at),
        ).where(OutboxMessage.event_id == event_id)
    ).one()
    if unsent:
        return
    event = session.get(CaseEvent, event_id)
    entering = session.scalar(
        select(func.max(CaseEvent.id)).where(
            CaseEvent.case_id == case_id, CaseEvent.from_status != CaseEvent.to_status
        )
    )
    if event is None or event.id != entering or case.status not in TIMERS or case.deadline:
        return
    settings = get_settings()
    started = max(last_sent or sent_at, sent_at)
    days = getattr(settings.deadlines, TIMERS[case.status])
    if case.status is CaseStatus.CHANGES_REQUESTED and case.change_days:
        days = case.change_days  # a repeat offender's shorter deadline
    deadline = started + timedelta(days=days)
    reminder = (
        next_reminder(deadline, settings.deadlines.reminder_offsets_days, now)
        if case.status is CaseStatus.CHANGES_REQUESTED
        else None
    )
    record(
        session,
        case=case,
        change=Change(
            op=Op.NOTICE_DELIVERED,
            actor=SYSTEM,
            reason=f"{event.kind.replace('_', ' ')} notice delivered; "
            f"deadline {readable(deadline)}",
            now=now,
            fields={"deadline": deadline, "next_reminder_at": reminder},
            data={"event_id": event_id, "sent_at": started.isoformat()},
        ),
    )
    if case.status is CaseStatus.CHANGES_REQUESTED:
        request = latest_change_request(session, case_id=case.id)
        if request is not None:
            request.notified_at, request.due_at = started, deadline
    elif case.status is CaseStatus.ENFORCED:
        enforcement_or_raise(session, case).notice_sent_at = started


def delivery_failed(
    session: Session, *, case_id: int, outbox_id: int, error: str, now: datetime
) -> None:
    """A notice could not be delivered: the case cannot escalate until a lead acts."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    record(
        session,
        case=case,
        change=Change(
            op=Op.DELIVERY_FAILED,
            actor=SYSTEM,
            reason=f"e-mail {outbox_id} could not be delivered: {error}",
            now=now,
            fields={"delivery_blocked": True},
            data={"outbox_id": outbox_id},
        ),
    )


def delivery_uncertain(
    session: Session, *, case_id: int, outbox_id: int, reason: str, now: datetime
) -> None:
    """A claimed e-mail was never recorded: it may have gone out. A lead must decide."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    record(
        session,
        case=case,
        change=Change(
            op=Op.DELIVERY_UNCERTAIN,
            actor=SYSTEM,
            reason=reason,
            now=now,
            data={"outbox_id": outbox_id},
        ),
    )


def delivery_resolved(
    session: Session,
    *,
    case_id: int,
    outbox_id: int,
    resend: bool,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """A lead settled an uncertain or failed e-mail; a resend is the lead acting on a block."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    record(
        session,
        case=case,
        change=Change(
            op=Op.DELIVERY_RESOLVED,
            actor=actor,
            reason=reason,
            now=now,
            fields={"delivery_blocked": False} if resend and case.delivery_blocked else {},
            data={"outbox_id": outbox_id},
        ),
    )


def unblock_delivery(
    session: Session, *, case_id: int, actor: str, reason: str, now: datetime
) -> Case:
    """A lead has dealt with a failed delivery (fixed the address, resent, or reached out)."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    if not case.delivery_blocked:
        raise GuardFailed(f"case {case.id} has no blocked delivery")
    record(
        session,
        case=case,
        change=Change(
            op=Op.DELIVERY_UNBLOCKED,
            actor=actor,
            reason=reason,
            now=now,
            fields={"delivery_blocked": False},
        ),
    )
    return case
