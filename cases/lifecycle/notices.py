"""What delivery tells the lifecycle: a notice went out, failed, or may have gone out.

A delivered notice starts the timer of the status it entered; a failed one blocks the case's
escalation until a lead acts. Called by the outbox, in the transaction that records the
delivery, and by SendGrid's Event Webhook (:mod:`cases.email.events`).

"Delivered" depends on the configuration: with the Event Webhook
(``email.sendgrid_webhook_public_key``) an e-mail is delivered when SendGrid reports it
delivered; without it, when the provider accepts it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.clock import readable
from cases.core.enums import CaseStatus, OutboxStatus
from cases.core.errors import GuardFailed
from cases.core.models import Case, CaseEvent, ChangeRequest, OutboxMessage
from cases.core.settings import get_settings
from cases.lifecycle.escalation import enforcement_or_raise
from cases.lifecycle.operations import latest_change_requests, next_reminder
from cases.lifecycle.service import get_or_raise
from cases.lifecycle.states import TIMERS, Op
from cases.lifecycle.write import SYSTEM, Change, record

# one e-mail of a notice: its status, when it was accepted and when it was delivered
EmailState = tuple[OutboxStatus, datetime | None, datetime | None]


@dataclass(frozen=True)
class Delivered:
    """An e-mail of a notice (the event ``event_id`` of case ``case_id``) was delivered;
    ``sent_at``: when it was accepted."""

    case_id: int
    event_id: int
    sent_at: datetime


def notice_delivered(
    session: Session, *, case_id: int, event_id: int, sent_at: datetime, now: datetime
) -> None:
    """Start the timer of the status a notice entered, once all its e-mails are delivered.

    Idempotent: later calls, reminders and notices of an earlier status change nothing.
    The case is locked before the count, so two deliveries recording the last two e-mails
    of one notice at once cannot both see the other's as unsent (the second waits).
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    notices_delivered(
        session, cases={case.id: case}, delivered=[Delivered(case_id, event_id, sent_at)], now=now
    )


def notices_delivered(
    session: Session, *, cases: Mapping[int, Case], delivered: Sequence[Delivered], now: datetime
) -> None:
    """:func:`notice_delivered` for many e-mails of cases the caller has locked (a webhook
    batch), with one query per kind of row the batch needs."""
    if not delivered:
        return
    settings = get_settings()
    event_ids = sorted({d.event_id for d in delivered})
    case_ids = sorted({d.case_id for d in delivered})
    emails: dict[int, list[EmailState]] = defaultdict(list)
    for event_id, status, sent, delivered_at in session.execute(
        select(
            OutboxMessage.event_id,
            OutboxMessage.status,
            OutboxMessage.sent_at,
            OutboxMessage.delivered_at,
        ).where(OutboxMessage.event_id.in_(event_ids))
    ):
        emails[event_id].append((status, sent, delivered_at))
    entering = dict(
        session.execute(
            select(CaseEvent.case_id, func.max(CaseEvent.id))
            .where(CaseEvent.case_id.in_(case_ids), CaseEvent.from_status != CaseEvent.to_status)
            .group_by(CaseEvent.case_id)
        ).all()
    )
    events = {
        e.id: e for e in session.scalars(select(CaseEvent).where(CaseEvent.id.in_(event_ids)))
    }
    requests = latest_change_requests(session, case_ids=case_ids)
    for item in delivered:
        case, event = cases[item.case_id], events.get(item.event_id)
        if event is None or event.id != entering.get(case.id):
            continue
        if case.status not in TIMERS or case.deadline:
            continue
        started = _delivered_at(
            emails[item.event_id],
            sent_at=item.sent_at,
            confirmed=settings.email.delivery_confirmed,
        )
        if started is not None:
            _start_timer(session, case, event, started, requests.get(case.id), now=now)


def _start_timer(
    session: Session,
    case: Case,
    event: CaseEvent,
    started: datetime,
    request: ChangeRequest | None,
    *,
    now: datetime,
) -> None:
    settings = get_settings()
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
            data={
                "event_id": event.id,
                "sent_at": started.isoformat(),
                "reported_by_provider": settings.email.delivery_confirmed,
            },
        ),
    )
    if case.status is CaseStatus.CHANGES_REQUESTED:
        if request is not None:
            request.notified_at, request.due_at = started, deadline
    elif case.status is CaseStatus.ENFORCED:
        enforcement_or_raise(session, case).notice_sent_at = started


def _delivered_at(
    rows: Sequence[EmailState], *, sent_at: datetime, confirmed: bool
) -> datetime | None:
    """When the last e-mail of a notice (``rows``: each e-mail's status, acceptance and
    delivery time) was delivered, or None while one is not.

    ``confirmed`` (the Event Webhook): each e-mail at the time SendGrid reports, but never
    before it accepted it (a clock behind ours, or a simulated one, cannot shorten a
    deadline); otherwise each e-mail at its acceptance, and ``sent_at`` at the earliest.
    """
    if any(status != OutboxStatus.SENT for status, _, _ in rows):
        return None
    if not confirmed:
        return max([sent_at, *(sent for _, sent, _ in rows if sent is not None)])
    times: list[datetime] = []
    for _, sent, delivered in rows:
        if delivered is None:
            return None
        times.append(max(delivered, sent or delivered))
    return max(times)


def delivery_failed(
    session: Session, *, case_id: int, outbox_id: int, error: str, now: datetime
) -> None:
    """A notice could not be delivered: the case cannot escalate until a lead acts."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    _delivery_failed(session, case=case, outbox_id=outbox_id, error=error, now=now)


def _delivery_failed(
    session: Session, *, case: Case, outbox_id: int, error: str, now: datetime
) -> None:
    """:func:`delivery_failed` on a case the caller has locked (a webhook batch)."""
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


def delivery_reported(
    session: Session, *, case: Case, outbox_id: int, op: Op, reason: str, now: datetime
) -> None:
    """What the provider reported about an e-mail that changes nothing but the timeline
    (a deferral, a spam report), on a case the caller has locked."""
    record(
        session,
        case=case,
        change=Change(op=op, actor=SYSTEM, reason=reason, now=now, data={"outbox_id": outbox_id}),
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
