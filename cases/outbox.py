"""Delivery of the outbox: claim, send, record; retry with backoff; never send twice.

Semantics (see docs/email.md):

* **Claim before the call.** A worker moves due ``pending`` rows to ``sending`` (claimed_at,
  claimed_by, attempts + 1) and commits *before* calling the provider. On PostgreSQL the rows
  are picked ``FOR UPDATE SKIP LOCKED``; on SQLite every transaction is ``BEGIN IMMEDIATE``,
  so the conditional ``UPDATE ... WHERE status = 'pending'`` claims atomically. Two workers
  never hold the same row.
* **Record after the call**, one transaction per message: ``sent`` (and
  ``cases.lifecycle.notice_delivered``, which starts the deadline from ``sent_at``), back to
  ``pending`` with exponential backoff and jitter on a transient error (until
  ``max_attempts``), ``failed`` (and ``cases.lifecycle.delivery_failed``, which blocks the
  case) on a permanent one. A 401/403 blames our configuration, not the message: the batch
  stops and its claims return to ``pending`` without using up an attempt.
* **A crash between the provider's acceptance and our record** leaves the row ``sending``.
  Once its claim is older than ``claim_lease_seconds`` it becomes ``uncertain``, with an event
  on the case timeline. It is **never resent automatically**: a lead checks the provider
  (SendGrid activity feed, searchable by the ``outbox_id`` custom arg) and runs
  ``caseward outbox resolve ID --sent`` or ``--resend``. A resend carries the same Message-ID.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from cases import lifecycle
from cases.db import session_scope
from cases.enums import OutboxStatus
from cases.errors import GuardFailed, NotFound
from cases.mail.base import (
    DeliveryError,
    EmailSender,
    PermanentDeliveryError,
    ProviderConfigError,
    SendResult,
    TransientDeliveryError,
    make_sender,
)
from cases.mail.message import InvalidAddress, OutgoingEmail, checked_address
from cases.models import Developer, OutboxMessage
from cases.settings import EmailSettings, Settings, get_settings

SYSTEM = "outbox"


class DeliveryHooks(Protocol):
    """What the lifecycle learns from delivery (``cases.lifecycle`` in production)."""

    def notice_delivered(
        self, session: Session, *, case_id: int, event_id: int, sent_at: datetime, now: datetime
    ) -> None: ...

    def delivery_failed(
        self, session: Session, *, case_id: int, outbox_id: int, error: str, now: datetime
    ) -> None: ...


class LifecycleHooks:
    """The real hooks: :mod:`cases.lifecycle` (imported late: it imports notifications)."""

    def notice_delivered(
        self, session: Session, *, case_id: int, event_id: int, sent_at: datetime, now: datetime
    ) -> None:
        from cases import lifecycle

        lifecycle.notice_delivered(
            session, case_id=case_id, event_id=event_id, sent_at=sent_at, now=now
        )

    def delivery_failed(
        self, session: Session, *, case_id: int, outbox_id: int, error: str, now: datetime
    ) -> None:
        from cases import lifecycle

        lifecycle.delivery_failed(
            session, case_id=case_id, outbox_id=outbox_id, error=error, now=now
        )


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    uncertain: int = 0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_worker_id() -> str:
    """Who holds a claim: host, process and a random suffix (unique per run)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff_delay(
    attempts: int, email: EmailSettings, *, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds before the next try: exponential in ``attempts``, capped, "equal jitter"
    (between half and all of the step), and never sooner than the provider's Retry-After."""
    step = min(email.backoff_max_seconds, email.backoff_base_seconds * 2 ** max(attempts - 1, 0))
    delay = step / 2 + rng.uniform(0, step / 2)
    return float(max(delay, retry_after or 0.0))


def to_outgoing(message: OutboxMessage, email: EmailSettings) -> OutgoingEmail:
    return OutgoingEmail(
        outbox_id=message.id,
        case_id=message.case_id,
        template=message.template,
        idempotency_key=message.idempotency_key,
        message_id=message.message_id,
        to_address=message.to_address,
        subject=message.subject,
        text_body=message.text_body,
        html_body=message.html_body,
        sender=email.sender,
        sender_name=email.sender_name,
        reply_to=email.reply_to,
        categories=(message.template,),
    )


def claim(session: Session, *, worker: str, now: datetime, limit: int) -> list[OutboxMessage]:
    """Move up to ``limit`` due pending rows to ``sending`` for ``worker`` (commit, then send)."""
    ids = list(
        session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            .where(OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.PENDING)
        .values(
            status=OutboxStatus.SENDING,
            claimed_at=now,
            claimed_by=worker,
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == worker)
        .where(OutboxMessage.status == OutboxStatus.SENDING)
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


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
        lifecycle.delivery_uncertain(
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


Outcome = SendResult | DeliveryError


def attempt(sender: EmailSender, email: OutgoingEmail, now: datetime) -> Outcome:
    """One provider call; a :class:`DeliveryError` is returned, anything else propagates."""
    try:
        checked_address(email.to_address)
        return sender.send(email, now=now)
    except InvalidAddress as exc:
        return PermanentDeliveryError(str(exc))
    except DeliveryError as exc:
        return exc


def record(
    session: Session,
    *,
    email: OutgoingEmail,
    outcome: Outcome,
    worker: str,
    now: datetime,
    settings: EmailSettings,
    hooks: DeliveryHooks,
    rng: random.Random,
) -> str:
    """Store the outcome of one send; returns what happened (sent/retried/failed/released/...)."""
    message = session.get(OutboxMessage, email.outbox_id, with_for_update=True)
    if message is None:
        return "gone"
    if isinstance(outcome, SendResult):
        if message.status == OutboxStatus.SENT:
            return "sent"
        message.status = OutboxStatus.SENT
        message.sent_at = now
        message.provider_message_id = outcome.provider_message_id
        message.last_error = None
        hooks.notice_delivered(
            session, case_id=message.case_id, event_id=message.event_id, sent_at=now, now=now
        )
        return "sent"
    if message.status != OutboxStatus.SENDING or message.claimed_by != worker:
        return "skipped"  # reconciled or resolved meanwhile; the lead's decision stands
    message.last_error = outcome.reason
    message.claimed_at = message.claimed_by = None
    if isinstance(outcome, ProviderConfigError):
        message.status = OutboxStatus.PENDING
        message.attempts = max(message.attempts - 1, 0)
        return "released"
    if isinstance(outcome, TransientDeliveryError) and message.attempts < settings.max_attempts:
        delay = backoff_delay(message.attempts, settings, rng=rng, retry_after=outcome.retry_after)
        message.status = OutboxStatus.PENDING
        message.next_attempt_at = now + timedelta(seconds=delay)
        return "retried"
    if isinstance(outcome, TransientDeliveryError):
        message.last_error = f"gave up after {message.attempts} attempts: {outcome.reason}"
    message.status = OutboxStatus.FAILED
    hooks.delivery_failed(
        session, case_id=message.case_id, outbox_id=message.id, error=message.last_error, now=now
    )
    return "failed"


def deliver_pending(
    engine: Engine,
    *,
    now: datetime,
    sender: EmailSender | None = None,
    settings: Settings | None = None,
    limit: int | None = None,
    worker: str | None = None,
    hooks: DeliveryHooks | None = None,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Deliver what is due at ``now``: the entry point of ``caseward outbox send`` and flows.

    Opens its own short transactions (never pass a session). Reconciles stale claims first,
    then claims batches of ``email.batch_size`` and sends them with at most
    ``email.concurrency`` provider calls in flight. ``clock`` (default: always ``now``)
    timestamps each record, so a long run stores real send times.
    """
    settings = settings or get_settings()
    email = settings.email
    sender = sender or make_sender(settings)
    hooks = hooks or LifecycleHooks()
    worker = worker or new_worker_id()
    clock = clock or (lambda: now)
    rng = rng or random.Random()
    report = DeliveryReport()
    with session_scope(engine) as session:
        report.uncertain = len(
            reconcile_stale(session, now=now, lease_seconds=email.claim_lease_seconds)
        )
    in_flight: deque[tuple[OutgoingEmail, Future[Outcome]]] = deque()
    exhausted = False
    with ThreadPoolExecutor(max_workers=email.concurrency, thread_name_prefix="outbox") as pool:
        while True:
            # keep about two batches in flight, so the pool never idles while we record
            if not exhausted and len(in_flight) <= email.batch_size:
                size = email.batch_size if limit is None else limit - report.claimed
                with session_scope(engine) as session:
                    batch = [
                        to_outgoing(m, email)
                        for m in claim(
                            session, worker=worker, now=clock(), limit=min(size, email.batch_size)
                        )
                    ]
                report.claimed += len(batch)
                in_flight.extend(
                    (item, pool.submit(attempt, sender, item, clock())) for item in batch
                )
                exhausted = not batch or (limit is not None and report.claimed >= limit)
            if not in_flight:
                break
            done = [in_flight.popleft()]
            while in_flight and in_flight[0][1].done():
                done.append(in_flight.popleft())
            # a crash (BaseException) propagates here: the group's rows stay claimed
            outcomes = [(item, future.result()) for item, future in done]
            _record_group(
                engine,
                outcomes,
                worker=worker,
                now=clock(),
                settings=email,
                hooks=hooks,
                rng=rng,
                report=report,
            )
            exhausted = exhausted or report.stopped is not None
    return report


def _record_group(
    engine: Engine,
    outcomes: list[tuple[OutgoingEmail, Outcome]],
    *,
    worker: str,
    now: datetime,
    settings: EmailSettings,
    hooks: DeliveryHooks,
    rng: random.Random,
    report: DeliveryReport,
) -> None:
    """Record finished sends in one transaction, each in its own savepoint: a failing hook
    leaves only its own row claimed (it becomes ``uncertain`` after the lease)."""
    with session_scope(engine) as session:
        for item, outcome in outcomes:
            try:
                with session.begin_nested():
                    result = record(
                        session,
                        email=item,
                        outcome=outcome,
                        worker=worker,
                        now=now,
                        settings=settings,
                        hooks=hooks,
                        rng=rng,
                    )
            except Exception as exc:  # reported; the row stays claimed
                report.errors.append(f"#{item.outbox_id}: recording failed: {exc}")
                continue
            _count(report, result, item, outcome)


def _count(report: DeliveryReport, result: str, item: OutgoingEmail, outcome: Outcome) -> None:
    if result in {"sent", "retried", "failed", "released"}:
        setattr(report, result, getattr(report, result) + 1)
    if isinstance(outcome, DeliveryError):
        report.errors.append(f"#{item.outbox_id} {item.template}: {outcome.reason}")
    if isinstance(outcome, ProviderConfigError):
        report.stopped = outcome.reason


def resolve(
    session: Session,
    *,
    outbox_id: int,
    decision: Literal["sent", "resend"],
    actor: str,
    now: datetime,
    hooks: DeliveryHooks | None = None,
) -> OutboxMessage:
    """A lead's decision on an ``uncertain`` (or ``failed``) e-mail.

    ``sent``: the provider did accept it (only for ``uncertain``); recorded as sent at its
    claim time, which starts the deadline. ``resend``: back to ``pending`` now, to the
    developer's current address, with the same Message-ID.
    """
    hooks = hooks or LifecycleHooks()
    message = session.get(OutboxMessage, outbox_id, with_for_update=True)
    if message is None:
        raise NotFound(f"no outbox message {outbox_id}")
    allowed = {
        "sent": {OutboxStatus.UNCERTAIN},
        "resend": {OutboxStatus.UNCERTAIN, OutboxStatus.FAILED},
    }
    if message.status not in allowed[decision]:
        raise GuardFailed(
            f"e-mail {outbox_id} is {message.status}; --{decision} applies to "
            + " or ".join(sorted(allowed[decision]))
        )
    if decision == "sent":
        message.status = OutboxStatus.SENT
        message.sent_at = message.claimed_at or now
        hooks.notice_delivered(
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
    lifecycle.delivery_resolved(
        session,
        case_id=message.case_id,
        outbox_id=message.id,
        resend=decision == "resend",
        actor=actor,
        now=now,
        reason=f"e-mail {message.id} ({message.template}) marked {decision} by {actor}",
    )
    return message
