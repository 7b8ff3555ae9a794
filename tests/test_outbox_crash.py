"""Crash between the provider's acceptance and our record; concurrent senders; lead resolve."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import OutboxStatus
from cases.core.errors import GuardFailed
from cases.core.models import Case, OutboxMessage
from cases.email import delivery, review
from cases.email.message import OutgoingEmail
from cases.email.senders.base import EmailSender, SendResult
from tests.email_fixtures import NOW, FakeSendGrid, pg_db, sendgrid_server, sqlite_db
from tests.test_outbox_delivery import queue, rows, sendgrid, settings, timeline

__all__ = ["pg_db", "sendgrid_server", "sqlite_db"]
LEASE = 600.0


class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so nothing on the way catches it."""


class CrashAfterAccept:
    """The provider accepts the e-mail, then the process dies before the outbox records it."""

    name = "crash"

    def __init__(self, inner: EmailSender) -> None:
        self.inner = inner

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        self.inner.send(email, now=now)
        raise SimulatedCrash()


def test_crash_after_acceptance_is_never_resent_and_shows_as_uncertain(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    case_id = queue(sqlite_db)
    config = settings(claim_lease_seconds=LEASE)
    with pytest.raises(SimulatedCrash):
        delivery.deliver_pending(
            sqlite_db, now=NOW, sender=CrashAfterAccept(sendgrid(sendgrid_server)), settings=config
        )
    assert len(sendgrid_server.requests) == 1  # the provider has it
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.SENDING and message.claimed_at == NOW
    sender = sendgrid(sendgrid_server)
    # within the lease: nothing happens (the first worker may still be recording)
    within = delivery.deliver_pending(
        sqlite_db, now=NOW + timedelta(seconds=LEASE - 1), sender=sender, settings=config
    )
    assert (within.claimed, within.uncertain) == (0, 0)
    # after the lease: uncertain, on the timeline, and still not resent
    after = NOW + timedelta(seconds=LEASE + 1)
    report = delivery.deliver_pending(sqlite_db, now=after, sender=sender, settings=config)
    assert (report.claimed, report.uncertain) == (0, 1)
    assert len(sendgrid_server.requests) == 1
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.UNCERTAIN
    assert timeline(sqlite_db, case_id)[-1] == "delivery_uncertain"
    # and it stays that way on later runs
    later = delivery.deliver_pending(
        sqlite_db, now=after + timedelta(days=3), sender=sender, settings=config
    )
    assert later.claimed == 0 and len(sendgrid_server.requests) == 1
    # the lead checks SendGrid's activity feed and confirms: the deadline starts at the claim
    with session_scope(sqlite_db) as session:
        review.resolve_delivery(
            session, outbox_id=message.id, decision="sent", actor="lead", now=after
        )
    with session_scope(sqlite_db) as session:
        assert session.get_one(OutboxMessage, message.id).status == OutboxStatus.SENT
        assert session.get_one(Case, case_id).deadline == NOW + timedelta(days=30)
    assert timeline(sqlite_db, case_id)[-2:] == ["notice_delivered", "delivery_resolved"]


def test_lead_can_resend_an_uncertain_message_with_the_same_message_id(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    queue(sqlite_db)
    config = settings(claim_lease_seconds=LEASE)
    with pytest.raises(SimulatedCrash):
        delivery.deliver_pending(
            sqlite_db, now=NOW, sender=CrashAfterAccept(sendgrid(sendgrid_server)), settings=config
        )
    after = NOW + timedelta(hours=1)
    delivery.deliver_pending(
        sqlite_db, now=after, sender=sendgrid(sendgrid_server), settings=config
    )
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.UNCERTAIN
    with session_scope(sqlite_db) as session:
        review.resolve_delivery(
            session, outbox_id=message.id, decision="resend", actor="lead", now=after
        )
    report = delivery.deliver_pending(
        sqlite_db, now=after, sender=sendgrid(sendgrid_server), settings=config
    )
    assert report.sent == 1
    first, second = (r["json"]["headers"]["Message-ID"] for r in sendgrid_server.requests)
    assert first == second == message.message_id  # a resend is deduplicable by mail clients


def test_resolve_refuses_a_sent_message(sqlite_db: Engine, sendgrid_server: FakeSendGrid) -> None:
    queue(sqlite_db)
    delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server), settings=settings()
    )
    (message,) = rows(sqlite_db)
    with session_scope(sqlite_db) as session, pytest.raises(GuardFailed):
        review.resolve_delivery(
            session, outbox_id=message.id, decision="resend", actor="lead", now=NOW
        )


def _race(engine: Engine, fake: FakeSendGrid, *, workers: int, cases: int) -> None:
    for _ in range(cases):
        queue(engine, developers=5)
    # long enough (about 0.5 s of sending per worker) that a worker starting late on a
    # busy machine still finds work: the test is about sharing, not about speed
    fake.delay = 0.02
    config = settings(batch_size=10, concurrency=4)
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            delivery.deliver_pending(engine, now=NOW, sender=sendgrid(fake), settings=config)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sent = Counter(r["json"]["custom_args"]["outbox_id"] for r in fake.requests)
    assert len(sent) == cases * 5
    assert set(sent.values()) == {1}, "an e-mail was sent twice"
    with session_scope(engine) as session:
        statuses = Counter(session.scalars(select(OutboxMessage.status)))
        claimers = set(session.scalars(select(OutboxMessage.claimed_by)))
    assert statuses == {OutboxStatus.SENT: cases * 5}
    assert len(claimers) == workers  # the work was really shared


def test_concurrent_senders_send_each_email_once_on_sqlite(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    _race(sqlite_db, sendgrid_server, workers=2, cases=20)


@pytest.mark.postgres
def test_concurrent_senders_send_each_email_once_on_postgres(
    pg_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    _race(pg_db, sendgrid_server, workers=3, cases=30)
