"""Delivery through the file, console and SendGrid backends; retries; permanent failures."""

from __future__ import annotations

import email
import email.policy
import io
import logging
import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.models import Case, CaseEvent, OutboxMessage
from cases.core.settings import EmailSettings, Settings
from cases.email import delivery, outbox
from cases.email.senders.console import ConsoleSender
from cases.email.senders.file import FileSender
from cases.email.senders.sendgrid import SendGridSender
from tests.email_fixtures import (
    INJECTION_NAME,
    NOW,
    FakeSendGrid,
    extras_for,
    make_case,
    sendgrid_server,
    sqlite_db,
)

__all__ = ["sendgrid_server", "sqlite_db"]
API_KEY = "SG.test-secret-key-do-not-log"


def settings(**email: object) -> Settings:
    base: dict[str, object] = {"backoff_base_seconds": 30}
    base.update(email)
    return Settings(email=EmailSettings(**base))


def queue(
    engine: Engine,
    *,
    developers: int = 1,
    template: EmailTemplate = EmailTemplate.FEATURE_CHANGE_REQUEST,
    address: str | None = None,
    app_name: str = "Weather Poster",
) -> int:
    """A case whose last step queued ``template`` for each developer; returns the case id."""
    with session_scope(engine) as session:
        case, event = make_case(session, developers=developers, email=address, app_name=app_name)
        outbox.enqueue(
            session,
            case=case,
            event=event,
            template=template,
            now=NOW,
            extra=extras_for(template, case),
        )
        return case.id


def rows(engine: Engine) -> list[OutboxMessage]:
    with session_scope(engine) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def timeline(engine: Engine, case_id: int) -> list[str]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        )


def sendgrid(fake: FakeSendGrid, *, sandbox: bool = False, timeout: float = 5.0) -> SendGridSender:
    return SendGridSender(api_key=API_KEY, host=fake.host, sandbox=sandbox, timeout=timeout)


def test_file_backend_writes_eml_and_the_deadline_starts_at_sending(
    sqlite_db: Engine, tmp_path: Path
) -> None:
    case_id = queue(sqlite_db, developers=2, app_name=INJECTION_NAME)
    sent_at = NOW + timedelta(hours=5)  # queued at NOW, delivered five hours later
    report = delivery.deliver_pending(
        sqlite_db, now=sent_at, sender=FileSender(tmp_path / "mail"), settings=settings()
    )
    assert (report.claimed, report.sent, report.failed) == (2, 2, 0)
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    raw = files[0].read_bytes()
    assert b"\r\n" in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"].startswith(f"[CW-{case_id}] Required changes")
    assert parsed["Bcc"] is None and parsed["Message-ID"].endswith("@caseward.local>")
    assert all(m.status == OutboxStatus.SENT and m.sent_at == sent_at for m in rows(sqlite_db))
    with session_scope(sqlite_db) as session:
        case = session.get_one(Case, case_id)
        assert case.deadline == sent_at + timedelta(days=30)
    assert timeline(sqlite_db, case_id)[-1] == "notice_delivered"
    # a second run finds nothing to do
    again = delivery.deliver_pending(
        sqlite_db, now=sent_at, sender=FileSender(tmp_path / "mail"), settings=settings()
    )
    assert again.claimed == 0


def test_console_backend_prints_the_message(sqlite_db: Engine) -> None:
    queue(sqlite_db)
    stream = io.StringIO()
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=ConsoleSender(stream), settings=settings()
    )
    assert report.sent == 1
    assert "Subject: [CW-" in stream.getvalue()
    assert "multipart/alternative" in stream.getvalue()


def test_sendgrid_request_json_and_202(sqlite_db: Engine, sendgrid_server: FakeSendGrid) -> None:
    case_id = queue(sqlite_db)
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server, sandbox=True), settings=settings()
    )
    assert report.sent == 1, report
    (request,) = sendgrid_server.requests
    (message,) = rows(sqlite_db)
    body = request["json"]
    assert request["path"] == "/v3/mail/send"
    assert sendgrid_server.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert body["from"] == {
        "email": "trust-and-safety@caseward.local",
        "name": "Platform Trust & Safety",
    }
    assert body["personalizations"][0]["to"] == [{"email": message.to_address}]
    assert body["subject"] == message.subject
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][1]["value"] == message.html_body
    assert body["headers"] == {"Message-ID": message.message_id}
    assert body["custom_args"] == {
        "caseward_message_id": message.message_id,
        "case_id": str(case_id),
        "outbox_id": str(message.id),
        "idempotency_key": message.idempotency_key,
    }
    assert body["categories"] == ["feature_change_request"]
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert message.status == OutboxStatus.SENT and message.provider_message_id == "sg-1"


def test_sendgrid_400_fails_permanently_and_blocks_the_case(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    case_id = queue(sqlite_db)
    sendgrid_server.statuses = [400]
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server), settings=settings()
    )
    assert (report.sent, report.failed) == (0, 1)
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.FAILED
    assert message.last_error == "SendGrid 400: scripted 400"
    assert timeline(sqlite_db, case_id)[-1] == "delivery_failed"
    with session_scope(sqlite_db) as session:
        assert session.get_one(Case, case_id).delivery_blocked
    # a failed message is never picked up again by itself
    later = delivery.deliver_pending(
        sqlite_db,
        now=NOW + timedelta(days=1),
        sender=sendgrid(sendgrid_server),
        settings=settings(),
    )
    assert later.claimed == 0 and len(sendgrid_server.requests) == 1


def test_invalid_address_fails_without_calling_the_provider(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    case_id = queue(sqlite_db, address="someone@localhost")
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server), settings=settings()
    )
    assert report.failed == 1 and sendgrid_server.requests == []
    assert "invalid address" in (rows(sqlite_db)[0].last_error or "")
    assert timeline(sqlite_db, case_id)[-1] == "delivery_failed"


def test_sendgrid_401_releases_the_batch_without_blaming_messages(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    case_id = queue(sqlite_db, developers=3)
    sendgrid_server.statuses = [401, 401, 401]
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server), settings=settings()
    )
    assert report.released == 3 and report.stopped == "SendGrid 401: scripted 401"
    assert all(m.status == OutboxStatus.PENDING and m.attempts == 0 for m in rows(sqlite_db))
    assert all(m.last_error is None for m in rows(sqlite_db))  # no message is blamed
    assert "delivery_failed" not in timeline(sqlite_db, case_id)


@pytest.mark.parametrize("statuses", [[429, 500], [503, 429]], ids=["429-500", "503-429"])
def test_transient_errors_retry_with_backoff_then_succeed(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid, statuses: list[int]
) -> None:
    queue(sqlite_db)
    sendgrid_server.statuses = list(statuses)
    config = settings()
    sender = sendgrid(sendgrid_server)
    first = delivery.deliver_pending(sqlite_db, now=NOW, sender=sender, settings=config)
    assert first.retried == 1
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.PENDING and message.attempts == 1
    first_delay = (message.next_attempt_at - NOW).total_seconds()
    assert 15 <= first_delay <= 30  # base 30 s, equal jitter: [15, 30]; Retry-After is 1 s
    # not due yet: nothing is sent
    assert delivery.deliver_pending(sqlite_db, now=NOW, sender=sender, settings=config).claimed == 0
    second_time = message.next_attempt_at
    second = delivery.deliver_pending(sqlite_db, now=second_time, sender=sender, settings=config)
    assert second.retried == 1
    (message,) = rows(sqlite_db)
    assert 30 <= (message.next_attempt_at - second_time).total_seconds() <= 60  # doubled
    third = delivery.deliver_pending(
        sqlite_db, now=message.next_attempt_at, sender=sender, settings=config
    )
    assert third.sent == 1
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.SENT and message.attempts == 3
    assert [r["status"] for r in sendgrid_server.requests] == [*statuses, 202]
    ids = {r["json"]["headers"]["Message-ID"] for r in sendgrid_server.requests}
    assert ids == {message.message_id}  # every try carries the same Message-ID


def test_transient_errors_give_up_after_the_retry_horizon(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    case_id = queue(sqlite_db)
    sendgrid_server.statuses = [500, 500, 500]
    # waits of at least 15 s then 30 s: the third failure is 45 s after the first
    config = settings(backoff_max_seconds=60, retry_horizon_hours=45 / 3600)
    when = NOW
    for _ in range(3):
        delivery.deliver_pending(
            sqlite_db, now=when, sender=sendgrid(sendgrid_server), settings=config
        )
        when += timedelta(hours=2)
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.FAILED and message.attempts == 3
    assert (message.last_error or "").startswith("gave up after 3 attempts over at least")
    assert timeline(sqlite_db, case_id)[-1] == "delivery_failed"


def test_a_timeout_is_transient(sqlite_db: Engine, sendgrid_server: FakeSendGrid) -> None:
    queue(sqlite_db)
    sendgrid_server.delay = 1.0
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server, timeout=0.2), settings=settings()
    )
    assert report.retried == 1
    assert "timed out" in (rows(sqlite_db)[0].last_error or "")


def test_the_api_key_never_reaches_a_log(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    queue(sqlite_db, developers=2)
    sendgrid_server.statuses = [202, 400]
    with caplog.at_level(logging.DEBUG):
        report = delivery.deliver_pending(
            sqlite_db, now=NOW, sender=sendgrid(sendgrid_server), settings=settings()
        )
    assert report.sent == 1 and report.failed == 1
    assert "HEADERS" in caplog.text  # the client did log its headers...
    assert API_KEY not in caplog.text  # ...with the key masked
    assert API_KEY not in repr(sendgrid(sendgrid_server))
    assert all(API_KEY not in (m.last_error or "") for m in rows(sqlite_db))


def test_backoff_is_exponential_capped_and_jittered() -> None:
    config = EmailSettings(backoff_base_seconds=10, backoff_max_seconds=100)
    rng = random.Random(7)
    for attempts, step in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        delays = {delivery.backoff_delay(attempts, config, rng=rng) for _ in range(50)}
        assert all(step / 2 <= d <= step for d in delays)
        assert len(delays) > 1  # jitter
    assert delivery.backoff_delay(1, config, rng=rng, retry_after=500) == 500
