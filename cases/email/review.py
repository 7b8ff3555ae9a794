"""What needs a lead's decision about e-mail, and the decision itself.

* :func:`reconcile_stale`: a row still ``sending`` after the claim lease was claimed, maybe
  accepted by the provider, and never recorded (a crash between the call and the record).
  It becomes ``uncertain``, with ``delivery_uncertain`` on the case timeline. It is never
  resent automatically (that could be a silent duplicate) and never dropped (a silent loss).
* :func:`resolve_delivery`: a lead, having checked the provider (SendGrid activity feed,
  searchable by the ``outbox_id`` custom arg), records an ``uncertain`` e-mail as ``sent``
  or queues it again (``resend``, also for a ``failed`` one, bounced ones included), with
  the same Message-ID.

Timeline events go through :mod:`cases.lifecycle.notices`, and so the single write path.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.enums import OutboxStatus
from cases.core.errors import GuardFailed, NotFound
from cases.core.models import Developer, OutboxMessage
from cases.lifecycle import notices

RESOLVABLE: dict[str, frozenset[OutboxStatus]] = {
    "sent": frozenset({OutboxStatus.UNCERTAIN}),
    "resend": frozenset({OutboxStatus.UNCERTAIN, OutboxStatus.FAILED}),
}


def reconcile_stale(session: Session, *, now: datetime, lease_seconds: float) -> list[int]:
    """Rows still ``sending`` after the lease: possibly accepted, so ``uncertain``, never resent."""
    cutoff = now - timedelta(seconds=lease_seconds)
    stale = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.SENDING)
            .where(OutboxMessage.claimed_at < cutoff)
            .order_by(OutboxMessage.id)
            .with_for_update(skip_locked=True)
        )
    )
    for message in stale:
        message.status = OutboxStatus.UNCERTAIN
        message.last_error = (
            f"claimed by {message.claimed_by} at {message.claimed_at:%Y-%m-%d %H:%M:%S} UTC and "
            "never recorded: the provider may have accepted it"
        )
        notices.delivery_uncertain(
            session,
            case_id=message.case_id,
            outbox_id=message.id,
            now=now,
            reason=(
                f"e-mail {message.id} ({message.template}) may or may not have been sent; "
                f"a lead must check and run: caseward outbox resolve {message.id} --sent|--resend"
            ),
        )
    return [m.id for m in stale]


def resolve_delivery(
    session: Session,
    *,
    outbox_id: int,
    decision: Literal["sent", "resend"],
    actor: str,
    now: datetime,
) -> OutboxMessage:
    """A lead's decision on an ``uncertain`` (or ``failed``) e-mail.

    ``sent``: the provider did accept it (only for ``uncertain``); recorded as sent at its
    claim time, which starts the deadline. ``resend``: back to ``pending`` now, to the
    developer's current address, with the same Message-ID.
    """
    message = session.get(OutboxMessage, outbox_id, with_for_update=True)
    if message is None:
        raise NotFound(f"no outbox message {outbox_id}")
    if message.status not in RESOLVABLE[decision]:
        raise GuardFailed(
            f"e-mail {outbox_id} is {message.status}; --{decision} applies to "
            + " or ".join(sorted(RESOLVABLE[decision]))
        )
    if decision == "sent":
        message.status = OutboxStatus.SENT
        message.sent_at = message.claimed_at or now
        notices.notice_delivered(
            session,
            case_id=message.case_id,
            event_id=message.event_id,
            sent_at=message.sent_at,
            now=now,
        )
    else:
        developer = session.get(Developer, message.developer_id)
        if developer is not None:
            message.to_address = developer.email
        message.status = OutboxStatus.PENDING
        message.attempts = 0
        message.next_attempt_at = now
        message.claimed_at = message.claimed_by = None
        message.delivered_at = message.bounced_at = None  # the new send's fate is unknown
    notices.delivery_resolved(
        session,
        case_id=message.case_id,
        outbox_id=message.id,
        resend=decision == "resend",
        actor=actor,
        now=now,
        reason=f"e-mail {message.id} ({message.template}) marked {decision} by {actor}",
    )
    return message


__all__ = ["RESOLVABLE", "reconcile_stale", "resolve_delivery"]
