"""Delivery of the outbox: claim, send, record; retry with backoff; never send twice.

Semantics (see docs/email.md):

* **Claim before the call.** A worker moves due ``pending`` rows to ``sending`` (claimed_at,
  claimed_by, attempts + 1) and commits *before* calling the provider. On PostgreSQL the rows
  are picked ``FOR UPDATE SKIP LOCKED``; on SQLite every transaction is ``BEGIN IMMEDIATE``,
  so the conditional ``UPDATE ... WHERE status = 'pending'`` claims atomically. Two workers
  never hold the same row.
* **Record after the call**, a savepoint per message in one transaction per group of
  finished calls: ``sent`` (and
  ``cases.lifecycle.notices.notice_delivered``, which starts the deadline from ``sent_at``,
  or, with SendGrid's Event Webhook, once :mod:`cases.email.events` has the delivery), back to
  ``pending`` with capped exponential backoff and jitter on a transient error (for at least
  ``retry_horizon_hours``), ``failed`` (and ``cases.lifecycle.notices.delivery_failed``,
  which blocks the case) on a permanent one.
* **An outage fails nothing.** A failure that is not about one message (401/403, a sender
  the provider or our own check rejects, a missing API key, a provider that cannot be
  reached) stops the run: checked before anything is claimed where it can be, and otherwise
  the claims in flight go back to ``pending`` exactly as they were (status, attempts, error).
* **Each claim and each record carries its own time**: the run's clock ticks from ``now``
  (a simulated instant holds still for the whole run), so a run longer than the lease
  never makes its own claims look abandoned.
* **A crash between the provider's acceptance and our record** leaves the row ``sending``.
  Once its claim is older than ``claim_lease_seconds`` it becomes ``uncertain`` and waits for
  a lead: :mod:`cases.email.review` (``reconcile_stale``, ``resolve_delivery``).
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import OutboxStatus
from cases.core.errors import CasewardError
from cases.core.models import OutboxMessage
from cases.core.settings import EmailSettings, Settings, get_settings
from cases.email.message import InvalidAddress, OutgoingEmail, checked_address
from cases.email.placeholders import EmailNotConfigured, refuse_placeholders
from cases.email.review import reconcile_stale
from cases.email.senders.base import (
    DeliveryError,
    EmailSender,
    PermanentDeliveryError,
    ProviderOutage,
    SendResult,
    TransientDeliveryError,
    make_sender,
)
from cases.lifecycle import notices


class DeliveryHooks(Protocol):
    """What the lifecycle learns from delivery: the :mod:`cases.lifecycle.notices` module itself
    in production; the benchmark delivers without it."""

    def notice_delivered(
        self, session: Session, *, case_id: int, event_id: int, sent_at: datetime, now: datetime
    ) -> None: ...

    def delivery_failed(
        self, session: Session, *, case_id: int, outbox_id: int, error: str, now: datetime
    ) -> None: ...


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


class DeliveryStopped(CasewardError):
    """A run stopped by an outage (see the module doc); its one line for the operator."""

    def __init__(self, report: DeliveryReport) -> None:
        done = f" after {report.sent} sent" if report.sent else ""
        super().__init__(
            f"e-mail delivery stopped{done}: {report.stopped}; no other e-mail was changed "
            "and the next run retries them"
        )


def new_worker_id() -> str:
    """Who holds a claim: host, process and a random suffix (unique per run)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _step(attempts: int, email: EmailSettings) -> float:
    exponent = min(max(attempts - 1, 0), 60)  # 2**60 seconds is past any cap
    return float(min(email.backoff_max_seconds, email.backoff_base_seconds * 2**exponent))


def backoff_delay(
    attempts: int, email: EmailSettings, *, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds before the next try: exponential in ``attempts``, capped, "equal jitter"
    (between half and all of the step), and never sooner than the provider's Retry-After."""
    step = _step(attempts, email)
    delay = step / 2 + rng.uniform(0, step / 2)
    return float(max(delay, retry_after or 0.0))


def retried_long_enough(attempts: int, email: EmailSettings) -> bool:
    """Whether ``attempts`` tries certainly span ``retry_horizon_hours``: every wait is at
    least half its step, so the first try lies at least that sum of halves in the past."""
    waited = sum(_step(n, email) / 2 for n in range(1, attempts))
    return waited >= email.retry_horizon_hours * 3600


def run_clock(now: datetime, *, simulated: bool) -> Callable[[], datetime]:
    """The clock of one run: ``now`` plus the real time elapsed since the run began; a
    simulated instant holds still (simulated time moves only when an operator moves it)."""
    if simulated:
        return lambda: now
    started = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - started)


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


# what the provider said to one send: accepted, or why not
ProviderAnswer = SendResult | DeliveryError
# what recording an answer did to its outbox row
DeliveryResult = Literal["sent", "retried", "failed", "released", "skipped", "gone"]


def attempt(sender: EmailSender, email: OutgoingEmail, now: datetime) -> ProviderAnswer:
    """One provider call; a :class:`DeliveryError` is returned, anything else propagates."""
    try:
        checked_address(email.to_address)
        return sender.send(email, now=now)
    except InvalidAddress as exc:
        return PermanentDeliveryError(str(exc))
    except DeliveryError as exc:
        return exc


def record_attempt(
    session: Session,
    *,
    email: OutgoingEmail,
    answer: ProviderAnswer,
    worker: str,
    now: datetime,
    settings: EmailSettings,
    hooks: DeliveryHooks,
    rng: random.Random,
    locked: bool = False,
) -> DeliveryResult:
    """Store the provider's answer to one send; returns what that did to the row.

    The row is locked first, unless ``locked``: the caller has locked and loaded it (a
    group of answers, :func:`_record_group`)."""
    message = session.get(OutboxMessage, email.outbox_id, with_for_update=not locked or None)
    if message is None:
        return "gone"
    if isinstance(answer, SendResult):
        if message.status == OutboxStatus.SENT:
            return "sent"
        message.sent_at = now
        message.provider_message_id = answer.provider_message_id
        if message.bounced_at is not None:  # the Event Webhook reported a bounce first
            message.status = OutboxStatus.FAILED
            hooks.delivery_failed(
                session,
                case_id=message.case_id,
                outbox_id=message.id,
                error=message.last_error or "SendGrid reported a bounce",
                now=now,
            )
            return "failed"
        message.status = OutboxStatus.SENT
        message.last_error = None
        hooks.notice_delivered(
            session, case_id=message.case_id, event_id=message.event_id, sent_at=now, now=now
        )
        return "sent"
    if message.status != OutboxStatus.SENDING or message.claimed_by != worker:
        return "skipped"  # reconciled or resolved meanwhile; the lead's decision stands
    message.claimed_at = message.claimed_by = None
    if isinstance(answer, ProviderOutage):  # as it was before the claim
        message.status = OutboxStatus.PENDING
        message.attempts = max(message.attempts - 1, 0)
        return "released"
    message.last_error = answer.reason
    transient = isinstance(answer, TransientDeliveryError)
    if transient and not retried_long_enough(message.attempts, settings):
        retry_after = answer.retry_after if isinstance(answer, TransientDeliveryError) else None
        delay = backoff_delay(message.attempts, settings, rng=rng, retry_after=retry_after)
        message.status = OutboxStatus.PENDING
        message.next_attempt_at = now + timedelta(seconds=delay)
        return "retried"
    if transient:
        message.last_error = (
            f"gave up after {message.attempts} attempts over at least "
            f"{settings.retry_horizon_hours:g} hours: {answer.reason}"
        )
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

    Opens its own short transactions (never pass a session). Checks the backend, our sender
    and, outside simulation, that no e-mail setting still holds a placeholder
    (:mod:`cases.email.placeholders`) first: a mistake there stops the run before anything
    changes. Then it reconciles stale claims, claims batches of ``email.batch_size`` and
    sends them with at most ``email.concurrency`` provider calls in flight. ``clock``
    (default: :func:`run_clock`) timestamps each claim and record, so a long run stores real
    claim and send times.
    """
    settings = settings or get_settings()
    email, made = settings.email, sender is None
    try:
        for address in (email.sender, email.reply_to):
            if address:
                checked_address(address, operator=True)
        sender = sender or make_sender(settings)
        if made:
            refuse_placeholders(settings)
    except (InvalidAddress, ProviderOutage, EmailNotConfigured) as exc:
        return DeliveryReport(stopped=str(exc))
    run = _Run(
        engine=engine,
        email=email,
        sender=sender,
        hooks=notices if hooks is None else hooks,
        worker=worker or new_worker_id(),
        clock=clock or run_clock(now, simulated=settings.simulation),
        rng=rng or random.Random(),
        limit=limit,
    )
    with session_scope(engine) as session:
        run.report.uncertain = len(
            reconcile_stale(session, now=now, lease_seconds=email.claim_lease_seconds)
        )
    try:
        run.pipeline()
    finally:
        if made:  # we made it: release its connections (SendGrid keeps some open)
            getattr(run.sender, "close", lambda: None)()
    return run.report


@dataclass
class _Run:
    """One delivery run: claims, the calls in flight, the records."""

    engine: Engine
    email: EmailSettings
    sender: EmailSender
    hooks: DeliveryHooks
    worker: str
    clock: Callable[[], datetime]
    rng: random.Random
    limit: int | None
    report: DeliveryReport = field(default_factory=DeliveryReport)

    def claim_batch(self) -> list[OutgoingEmail]:
        size = self.email.batch_size
        if self.limit is not None:
            size = min(size, self.limit - self.report.claimed)
        with session_scope(self.engine) as session:
            claimed = claim(session, worker=self.worker, now=self.clock(), limit=size)
            batch = [to_outgoing(m, self.email) for m in claimed]
        self.report.claimed += len(batch)
        return batch

    def pipeline(self) -> None:
        """Claim, send with at most ``concurrency`` calls in flight, record what finished.

        About two batches stay in flight, so the pool never idles while we record.
        """
        in_flight: deque[tuple[OutgoingEmail, Future[ProviderAnswer]]] = deque()
        exhausted = False
        workers = self.email.concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="outbox") as pool:
            while True:
                if not exhausted and len(in_flight) <= self.email.batch_size:
                    batch = self.claim_batch()
                    in_flight.extend(
                        (item, pool.submit(attempt, self.sender, item, self.clock()))
                        for item in batch
                    )
                    exhausted = not batch or (
                        self.limit is not None and self.report.claimed >= self.limit
                    )
                if not in_flight:
                    return
                done = [in_flight.popleft()]
                while in_flight and in_flight[0][1].done():
                    done.append(in_flight.popleft())
                # a crash (BaseException) propagates here: the group's rows stay claimed
                answers = [(item, future.result()) for item, future in done]
                _record_group(
                    self.engine,
                    answers,
                    worker=self.worker,
                    now=self.clock(),
                    settings=self.email,
                    hooks=self.hooks,
                    rng=self.rng,
                    report=self.report,
                )
                exhausted = exhausted or self.report.stopped is not None


def _record_group(
    engine: Engine,
    answers: list[tuple[OutgoingEmail, ProviderAnswer]],
    *,
    worker: str,
    now: datetime,
    settings: EmailSettings,
    hooks: DeliveryHooks,
    rng: random.Random,
    report: DeliveryReport,
) -> None:
    """Record finished sends in one transaction: the group's rows locked and loaded with one
    query and recorded in one savepoint; if recording one fails, again each in its own
    savepoint, so a failing hook leaves only its own row claimed (it becomes ``uncertain``
    after the lease)."""
    record = partial(
        record_attempt, worker=worker, now=now, settings=settings, hooks=hooks, rng=rng
    )
    with session_scope(engine) as session:
        together = _record_together(session, answers, record)
        if together is not None:
            for (item, answer), result in zip(answers, together, strict=True):
                _count(report, result, item, answer)
            return
        for item, answer in answers:
            try:
                with session.begin_nested():
                    result = record(session, email=item, answer=answer)
            except Exception as exc:  # reported; the row stays claimed
                report.errors.append(f"#{item.outbox_id}: recording failed: {exc}")
                continue
            _count(report, result, item, answer)


def _record_together(
    session: Session,
    answers: list[tuple[OutgoingEmail, ProviderAnswer]],
    record: Callable[..., DeliveryResult],
) -> list[DeliveryResult] | None:
    """Record all ``answers`` in one savepoint, their rows locked and loaded with one query
    (and held here, so that each record finds its row loaded); None if one failed, and
    nothing of them is recorded."""
    query = select(OutboxMessage).where(
        OutboxMessage.id.in_([item.outbox_id for item, _ in answers])
    )
    loaded = {m.id: m for m in session.scalars(query.with_for_update())}
    try:
        with session.begin_nested():
            return [
                record(session, email=item, answer=answer, locked=True)
                if item.outbox_id in loaded
                else "gone"
                for item, answer in answers
            ]
    except Exception:  # the caller records them one by one, to find the one that fails
        return None


def _count(
    report: DeliveryReport, result: DeliveryResult, item: OutgoingEmail, answer: ProviderAnswer
) -> None:
    if result in {"sent", "retried", "failed", "released"}:
        setattr(report, result, getattr(report, result) + 1)
    if isinstance(answer, DeliveryError) and not isinstance(answer, ProviderOutage):
        report.errors.append(f"#{item.outbox_id} {item.template}: {answer.reason}")
    if isinstance(answer, ProviderOutage):
        report.stopped = answer.reason
