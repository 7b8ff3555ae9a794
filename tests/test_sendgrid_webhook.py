"""SendGrid's signed Event Webhook: real requests through Starlette's TestClient, signed with a
key pair generated here, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from cases.core.db import session_scope
from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.errors import ConfigError, GuardFailed
from cases.core.models import Case, CaseEvent, EmailEvent, OutboxMessage
from cases.core.settings import get_settings
from cases.email import delivery, outbox, review
from cases.email.senders.base import SendResult
from cases.email.senders.file import FileSender
from cases.email.senders.sendgrid import SendGridSender
from cases.lifecycle import escalation, notices, sweeper
from tests.conftest import reset_caches
from tests.email_fixtures import NOW, FakeSendGrid, extras_for, make_case, sendgrid_server
from tests.webhook_fixtures import SendGridSigner, body_of, sg_event, webhook_app

__all__ = ["sendgrid_server"]
SENT = NOW + timedelta(hours=1)  # when the provider accepted the e-mails
BUSINESS_NOW = NOW + timedelta(days=1)  # CASEWARD_NOW while the webhook runs
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
FCR = EmailTemplate.FEATURE_CHANGE_REQUEST


@pytest.fixture
def signer() -> SendGridSigner:
    return SendGridSigner()


@pytest.fixture
def client(
    engine: Engine, signer: SendGridSigner, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The webhook, configured with ``signer``'s key, on the test's database."""
    monkeypatch.setenv("CASEWARD_EMAIL__SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    monkeypatch.setenv("CASEWARD_NOW", BUSINESS_NOW.isoformat())
    reset_caches()
    app = webhook_app(engine, get_settings())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def post(
    client: TestClient, signer: SendGridSigner, events: list[dict[str, Any]]
) -> httpx.Response:
    body = body_of(events)
    return client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))


def sent_case(engine: Engine, tmp_path: Path, *, developers: int = 1) -> tuple[int, list[str]]:
    """A change request e-mailed to ``developers`` developers, accepted by the file backend at
    ``SENT``; the case id and the e-mails' Message-IDs, read back from the ``.eml`` files."""
    with session_scope(engine) as session:
        case, event = make_case(session, developers=developers)
        outbox.enqueue(
            session, case=case, event=event, template=FCR, now=NOW, extra=extras_for(FCR, case)
        )
        case_id = case.id
    mail = tmp_path / "mail"
    report = delivery.deliver_pending(
        engine, now=SENT, sender=FileSender(mail), settings=get_settings()
    )
    assert report.sent == developers, report
    ids = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Message-ID"]
        for p in sorted(mail.glob(f"case-{case_id}-*.eml"))
    ]
    return case_id, ids


def get_case(engine: Engine, case_id: int) -> Case:
    with session_scope(engine) as session:
        return session.get_one(Case, case_id)


def messages(engine: Engine, case_id: int) -> list[OutboxMessage]:
    with session_scope(engine) as session:
        query = select(OutboxMessage).where(OutboxMessage.case_id == case_id)
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def timeline(engine: Engine, case_id: int) -> list[tuple[str, datetime]]:
    with session_scope(engine) as session:
        query = select(CaseEvent.kind, CaseEvent.at).where(CaseEvent.case_id == case_id)
        return [(kind, at) for kind, at in session.execute(query.order_by(CaseEvent.id))]


def kinds(engine: Engine, case_id: int) -> list[str]:
    return [kind for kind, _ in timeline(engine, case_id)]


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything the webhook may change."""
    with session_scope(engine) as session:
        return {
            "events": session.scalar(select(func.count()).select_from(CaseEvent)),
            "email_events": session.scalar(select(func.count()).select_from(EmailEvent)),
            "outbox": [
                (m.status, m.delivered_at, m.bounced_at, m.last_error)
                for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            ],
            "cases": [
                (c.status, c.deadline, c.delivery_blocked)
                for c in session.scalars(select(Case).order_by(Case.id))
            ],
        }


def counts(**given: int) -> dict[str, int]:
    base = {"received": 0, "recorded": 0, "duplicates": 0, "unknown": 0, "ignored": 0}
    return base | {"invalid": 0} | given


# --- delivery starts the deadline -------------------------------------------------------


def test_the_deadline_starts_when_sendgrid_reports_every_email_delivered(
    engine: Engine, client: TestClient, signer: SendGridSigner, tmp_path: Path
) -> None:
    case_id, (first, second) = sent_case(engine, tmp_path, developers=2)
    assert get_case(engine, case_id).deadline is None  # accepted is not delivered
    assert {m.message_id for m in messages(engine, case_id)} == {first, second}

    answer = post(client, signer, [sg_event("delivered", first, SENT + timedelta(minutes=1))])
    assert (answer.status_code, answer.json()) == (200, counts(received=1, recorded=1))
    assert get_case(engine, case_id).deadline is None  # one developer still waits

    delivered = SENT + timedelta(hours=3)  # a slow receiving server
    answer = post(
        client,
        signer,
        [sg_event("processed", second, SENT), sg_event("delivered", second, delivered)],
    )
    assert answer.json() == counts(received=2, recorded=1, ignored=1)
    days = get_settings().deadlines.change_days
    assert get_case(engine, case_id).deadline == delivered + timedelta(days=days)
    assert timeline(engine, case_id)[-1] == ("notice_delivered", BUSINESS_NOW)
    assert [m.delivered_at for m in messages(engine, case_id)] == [
        SENT + timedelta(minutes=1),
        delivered,
    ]


def test_without_a_key_the_route_is_absent_and_acceptance_starts_the_deadline(
    engine: Engine, signer: SendGridSigner, tmp_path: Path
) -> None:
    case_id, (message_id,) = sent_case(engine, tmp_path)
    days = get_settings().deadlines.change_days
    assert get_case(engine, case_id).deadline == SENT + timedelta(days=days)
    with TestClient(webhook_app(engine, get_settings())) as test_client:
        answer = post(test_client, signer, [sg_event("bounce", message_id, SENT)])
    assert answer.status_code == 404
    assert not get_case(engine, case_id).delivery_blocked


def test_sendgrid_requests_carry_the_message_id_the_webhook_maps_back(
    engine: Engine,
    client: TestClient,
    signer: SendGridSigner,
    sendgrid_server: FakeSendGrid,
) -> None:
    """The official client, against a local server: the custom argument the request carries
    is what the events name, and it is the stored Message-ID."""
    with session_scope(engine) as session:
        case, event = make_case(session)
        outbox.enqueue(
            session, case=case, event=event, template=FCR, now=NOW, extra=extras_for(FCR, case)
        )
        case_id = case.id
    sender = SendGridSender(api_key="SG.test", host=sendgrid_server.host, timeout=5)
    report = delivery.deliver_pending(engine, now=SENT, sender=sender, settings=get_settings())
    assert report.sent == 1
    (request,) = sendgrid_server.requests
    (message,) = messages(engine, case_id)
    custom = request["json"]["custom_args"]
    assert (
        custom["caseward_message_id"]
        == message.message_id
        == request["json"]["headers"]["Message-ID"]
    )
    assert get_case(engine, case_id).deadline is None
    delivered = SENT + timedelta(seconds=5)
    answer = post(client, signer, [sg_event("delivered", custom["caseward_message_id"], delivered)])
    assert answer.json()["recorded"] == 1
    days = get_settings().deadlines.change_days
    assert get_case(engine, case_id).deadline == delivered + timedelta(days=days)


def test_a_delivery_reported_before_the_send_is_recorded_counts_once_it_is(
    engine: Engine, client: TestClient, signer: SendGridSigner
) -> None:
    """SendGrid can be quicker than our record of its 202: the deadline starts when the send
    is recorded, and never before the provider accepted the e-mail."""
    with session_scope(engine) as session:
        case, event = make_case(session)
        outbox.enqueue(
            session, case=case, event=event, template=FCR, now=NOW, extra=extras_for(FCR, case)
        )
        case_id = case.id
    with session_scope(engine) as session:
        (claimed,) = delivery.claim(session, worker="w", now=SENT, limit=10)
        email_out = delivery.to_outgoing(claimed, get_settings().email)
    answer = post(client, signer, [sg_event("delivered", email_out.message_id, SENT)])
    assert answer.json()["recorded"] == 1
    assert get_case(engine, case_id).deadline is None
    recorded_at = SENT + timedelta(seconds=30)
    with session_scope(engine) as session:
        result = delivery.record_attempt(
            session,
            email=email_out,
            answer=SendResult("sg-1"),
            worker="w",
            now=recorded_at,
            settings=get_settings().email,
            hooks=notices,
            rng=random.Random(1),
        )
    assert result == "sent"
    days = get_settings().deadlines.change_days
    assert get_case(engine, case_id).deadline == recorded_at + timedelta(days=days)


def test_a_delivery_settles_an_uncertain_email_without_a_lead(
    engine: Engine, client: TestClient, signer: SendGridSigner
) -> None:
    """A crash between SendGrid's 202 and our record leaves the e-mail uncertain; its
    delivery event says it was sent: settled, the deadline runs, and it is never resent."""
    with session_scope(engine) as session:
        case, event = make_case(session)
        outbox.enqueue(
            session, case=case, event=event, template=FCR, now=NOW, extra=extras_for(FCR, case)
        )
        case_id = case.id
    with session_scope(engine) as session:
        (claimed,) = delivery.claim(session, worker="w", now=SENT, limit=10)
        message_id = delivery.to_outgoing(claimed, get_settings().email).message_id
    lease = get_settings().email.claim_lease_seconds
    lease_over = SENT + timedelta(seconds=lease + 1)
    with session_scope(engine) as session:  # the worker died; the lease runs out
        assert review.reconcile_stale(session, now=lease_over, lease_seconds=lease)
    assert [m.status for m in messages(engine, case_id)] == [OutboxStatus.UNCERTAIN]
    assert get_case(engine, case_id).deadline is None

    delivered = SENT + timedelta(seconds=20)
    answer = post(client, signer, [sg_event("delivered", message_id, delivered)])
    assert answer.json()["recorded"] == 1
    (message,) = messages(engine, case_id)
    assert (message.status, message.sent_at) == (OutboxStatus.SENT, SENT)
    days = get_settings().deadlines.change_days
    assert get_case(engine, case_id).deadline == delivered + timedelta(days=days)
    assert kinds(engine, case_id)[-2:] == ["delivery_resolved", "notice_delivered"]
    # nothing left for a lead to resolve
    with session_scope(engine) as session, pytest.raises(GuardFailed):
        review.resolve_delivery(
            session, outbox_id=message.id, decision="resend", actor="lead-ann", now=lease_over
        )


# --- refused requests -------------------------------------------------------------------

Headers = Callable[[SendGridSigner, bytes], dict[str, str]]


def _without(name: str) -> Headers:
    return lambda s, body: {k: v for k, v in s.headers(body).items() if k != name}


def _with(name: str, value: str) -> Headers:
    return lambda s, body: s.headers(body) | {name: value}


def _shifted_timestamp(s: SendGridSigner, body: bytes) -> dict[str, str]:
    headers = s.headers(body)
    return headers | {TIMESTAMP: str(int(headers[TIMESTAMP]) - 1)}


REFUSED: dict[str, Headers] = {
    "signed with another key": lambda s, body: SendGridSigner().headers(body),
    "signature of another body": lambda s, body: s.headers(body.replace(b"bounce", b"deferred")),
    "no signature": _without(SIGNATURE),
    "no timestamp": _without(TIMESTAMP),
    "signature not base64": _with(SIGNATURE, "%%% not base64 %%%"),
    "empty signature": _with(SIGNATURE, ""),
    "timestamp not a number": _with(TIMESTAMP, "1e9"),
    "timestamp other than signed": _shifted_timestamp,
    "eleven minutes old": lambda s, body: s.headers(body, at=time.time() - 11 * 60),
    "eleven minutes ahead": lambda s, body: s.headers(body, at=time.time() + 11 * 60),
}


@pytest.mark.parametrize("how", list(REFUSED))
def test_unsigned_tampered_or_stale_requests_get_401_and_change_nothing(
    how: str, engine: Engine, client: TestClient, signer: SendGridSigner, tmp_path: Path
) -> None:
    case_id, (message_id,) = sent_case(engine, tmp_path)
    body = body_of([sg_event("bounce", message_id, SENT, reason="550 no such user")])
    before = snapshot(engine)
    answer = client.post("/webhooks/sendgrid", content=body, headers=REFUSED[how](signer, body))
    assert answer.status_code == 401, answer.text
    assert snapshot(engine) == before
    # the same body, signed now, goes through
    answer = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
    assert answer.status_code == 200 and get_case(engine, case_id).delivery_blocked


def test_a_signature_nine_minutes_old_is_still_fresh(
    engine: Engine, client: TestClient, signer: SendGridSigner
) -> None:
    body = body_of([])
    headers = signer.headers(body, at=time.time() - 9 * 60)
    answer = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (200, counts())


def test_a_signed_body_that_is_not_an_array_of_events_is_a_400(
    engine: Engine, client: TestClient, signer: SendGridSigner
) -> None:
    for body in (b'{"event": "delivered"}', b"[not json", "[]".encode("utf-16")):
        answer = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
        assert answer.status_code in (400, 401), body  # UTF-16 cannot carry the signature
    body = b'{"event": "delivered"}'
    answer = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
    assert answer.status_code == 400 and "JSON array" in answer.json()["detail"]


def test_a_bad_key_in_the_configuration_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASEWARD_EMAIL__SENDGRID_WEBHOOK_PUBLIC_KEY", "MFkwEwYHKoZIzj0CAQYIKo")
    reset_caches()
    with pytest.raises(ConfigError, match=r"sendgrid_webhook_public_key: .*verification key"):
        get_settings()


# --- what events do ---------------------------------------------------------------------


def test_a_batch_sent_again_changes_nothing(
    engine: Engine, client: TestClient, signer: SendGridSigner, tmp_path: Path
) -> None:
    case_id, (message_id,) = sent_case(engine, tmp_path)
    deferred = sg_event("deferred", message_id, SENT, response="421 try again later")
    batch = [deferred, sg_event("delivered", message_id, SENT + timedelta(hours=1)), deferred]
    first = post(client, signer, batch)
    assert first.json() == counts(received=3, recorded=2, duplicates=1)
    before = snapshot(engine)
    again = post(client, signer, batch)  # SendGrid retries a batch it thinks failed
    assert again.json() == counts(received=3, duplicates=3)
    assert snapshot(engine) == before
    assert kinds(engine, case_id).count("delivery_deferred") == 1


def test_events_for_other_senders_or_of_other_kinds_are_counted_and_ignored(
    engine: Engine, client: TestClient, signer: SendGridSigner, tmp_path: Path
) -> None:
    _, (message_id,) = sent_case(engine, tmp_path)
    before = snapshot(engine)
    batch = [
        sg_event("delivered", "<not-ours@example.com>", SENT),
        sg_event("bounce", None, SENT),  # sent by another system on the same account
        sg_event("open", message_id, SENT),
        sg_event("click", message_id, SENT),
        {"event": "delivered", "caseward_message_id": message_id},  # no id, no time
        "not an event",
    ]
    answer = post(client, signer, batch)
    assert answer.json() == counts(received=6, unknown=2, ignored=2, invalid=2)
    assert snapshot(engine) == before


@pytest.mark.parametrize("kind", ["bounce", "dropped"])
def test_a_bounce_fails_the_email_and_blocks_escalation_until_a_lead_acts(
    kind: str, engine: Engine, client: TestClient, signer: SendGridSigner, tmp_path: Path
) -> None:
    case_id, (message_id,) = sent_case(engine, tmp_path)
    post(client, signer, [sg_event("delivered", message_id, SENT)])
    deadline = get_case(engine, case_id).deadline
    assert deadline is not None
    hostile = "550 5.1.1 <b>no such user</b>\r\nX-Injected: yes"
    answer = post(
        client, signer, [sg_event(kind, message_id, SENT + timedelta(hours=2), reason=hostile)]
    )
    assert answer.json()["recorded"] == 1
    case = get_case(engine, case_id)
    assert case.delivery_blocked and case.deadline == deadline
    (message,) = messages(engine, case_id)
    assert message.status == OutboxStatus.FAILED
    assert message.bounced_at == SENT + timedelta(hours=2)
    assert message.last_error is not None and "\n" not in message.last_error
    assert message.last_error.startswith(f"SendGrid reported {kind}: 550 5.1.1")
    assert timeline(engine, case_id)[-1] == ("delivery_failed", BUSINESS_NOW)

    later = deadline + timedelta(days=1)
    assert sweeper.run_step(engine, "expire-deadlines", now=later).done == []
    with session_scope(engine) as session, pytest.raises(GuardFailed, match="not delivered"):
        escalation.escalate(session, case_id=case_id, now=later)
    with session_scope(engine) as session:  # the lead fixed the address and resends
        review.resolve_delivery(
            session, outbox_id=message.id, decision="resend", actor="lead-ann", now=later
        )
    (message,) = messages(engine, case_id)
    assert message.status == OutboxStatus.PENDING
    assert (message.delivered_at, message.bounced_at) == (None, None)
    assert not get_case(engine, case_id).delivery_blocked


def test_deferrals_and_spam_reports_go_on_the_timeline(
    engine: Engine, client: TestClient, signer: SendGridSigner, tmp_path: Path
) -> None:
    case_id, (message_id,) = sent_case(engine, tmp_path)
    post(
        client,
        signer,
        [
            sg_event("deferred", message_id, SENT + timedelta(minutes=m), response=f"421 at {m}")
            for m in (5, 1, 30)
        ],
    )
    post(client, signer, [sg_event("deferred", message_id, SENT + timedelta(hours=2))])
    post(client, signer, [sg_event("spamreport", message_id, SENT + timedelta(hours=3))])
    events = [(k, at) for k, at in timeline(engine, case_id) if k != "request_changes"]
    assert events == [("delivery_deferred", BUSINESS_NOW), ("spam_reported", BUSINESS_NOW)]
    with session_scope(engine) as session:
        reasons = list(
            session.scalars(
                select(CaseEvent.reason).where(
                    CaseEvent.case_id == case_id, CaseEvent.kind == "delivery_deferred"
                )
            )
        )
    assert reasons == [  # the first deferral, whatever order the batch had
        f"e-mail {messages(engine, case_id)[0].id} (feature_change_request) was deferred by "
        "the receiving server; SendGrid keeps trying: 421 at 1"
    ]
    assert not get_case(engine, case_id).delivery_blocked


FAULT_SQL = {
    "sqlite": [
        "CREATE TRIGGER injected_fault BEFORE INSERT ON case_events "
        "WHEN NEW.kind = 'delivery_failed' BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$",
        "CREATE TRIGGER injected_fault BEFORE INSERT ON case_events FOR EACH ROW "
        "WHEN (NEW.kind = 'delivery_failed') EXECUTE FUNCTION injected_fault()",
    ],
}
FAULT_CLEANUP = {
    "sqlite": ["DROP TRIGGER injected_fault"],
    "postgresql": [
        "DROP TRIGGER injected_fault ON case_events",
        "DROP FUNCTION injected_fault()",
    ],
}


def test_one_transaction_per_batch_a_fault_in_the_middle_leaves_nothing(
    engine: Engine, client: TestClient, signer: SendGridSigner, tmp_path: Path
) -> None:
    """The database refuses the bounce's timeline event, after the batch's events were
    stored and the first case's delivery applied: the whole batch rolls back, SendGrid gets
    a 500 and its retry applies everything."""
    delivered_case, (delivered_id,) = sent_case(engine, tmp_path)
    bounced_case, (bounced_id,) = sent_case(engine, tmp_path)
    batch = [
        sg_event("delivered", delivered_id, SENT),
        sg_event("bounce", bounced_id, SENT + timedelta(minutes=1)),
        sg_event("deferred", bounced_id, SENT),
    ]
    before = snapshot(engine)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for statement in FAULT_SQL[dialect]:
            conn.execute(text(statement))
    try:
        answer = post(client, signer, batch)
    finally:
        with engine.begin() as conn:
            for statement in FAULT_CLEANUP[dialect]:
                conn.execute(text(statement))
    assert answer.status_code == 500
    assert snapshot(engine) == before
    answer = post(client, signer, batch)
    assert answer.json() == counts(received=3, recorded=3)
    assert get_case(engine, delivered_case).deadline is not None
    assert get_case(engine, bounced_case).delivery_blocked


def test_the_outbox_listing_shows_delivered_and_bounced(
    engine: Engine,
    client: TestClient,
    signer: SendGridSigner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from caseward.cli import common, main

    _, (delivered_id,) = sent_case(engine, tmp_path)
    _, (bounced_id,) = sent_case(engine, tmp_path)
    _, (unreported_id,) = sent_case(engine, tmp_path)
    post(
        client,
        signer,
        [sg_event("delivered", delivered_id, SENT), sg_event("bounce", bounced_id, SENT)],
    )
    assert main(["outbox", "list", "--json"]) == 0
    listed = {r["message_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[delivered_id]["delivered_at"] == SENT.isoformat()
    assert listed[bounced_id]["bounced_at"] == SENT.isoformat()
    assert listed[bounced_id]["status"] == "failed"
    assert listed[unreported_id]["delivered_at"] is listed[unreported_id]["bounced_at"] is None
    monkeypatch.setattr(common.out, "width", 240)  # one line per row
    assert main(["outbox", "list"]) == 0
    table = capsys.readouterr().out
    assert "delivered" in table and "bounced" in table
