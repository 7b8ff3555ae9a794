"""E-mail outages fail nothing: a failure that is not about one message stops the run, exit 1,
one line, and no e-mail's status, attempts or error change; transient failures retry for
days; and each claim carries its own time, so a long run never looks abandoned."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from cases.core.clock import utcnow
from cases.core.db import Base, get_engine, session_scope
from cases.core.enums import OutboxStatus
from cases.core.settings import EmailSettings, Settings
from cases.email import delivery
from cases.email.message import OutgoingEmail
from cases.email.review import reconcile_stale
from cases.email.senders.base import SendResult, TransientDeliveryError
from cases.email.senders.sendgrid import SendGridSender
from caseward.cli import main
from tests.conftest import reset_caches
from tests.email_fixtures import NOW, FakeSendGrid, sendgrid_server, sqlite_db
from tests.test_outbox_delivery import API_KEY, queue, rows, sendgrid, settings, timeline

__all__ = ["sendgrid_server", "sqlite_db"]
COLUMNS = ("status", "attempts", "last_error", "next_attempt_at", "claimed_at", "claimed_by",
           "sent_at")  # fmt: skip


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    return [tuple(getattr(m, c) for c in COLUMNS) for m in rows(engine)]


@pytest.fixture
def cli_db() -> Engine:
    engine = get_engine()
    Base.metadata.create_all(engine)
    return engine


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once it is closed


# --- a failure that is not about one message ----------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_provider_refusing_our_key_changes_no_email(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid, status: int
) -> None:
    case_id = queue(sqlite_db, developers=3)
    before = snapshot(sqlite_db)
    sendgrid_server.statuses = [status] * 3
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server), settings=settings()
    )
    assert report.stopped == f"SendGrid {status}: scripted {status}"
    assert (report.sent, report.failed, report.retried, report.errors) == (0, 0, 0, [])
    assert snapshot(sqlite_db) == before
    assert "delivery_failed" not in timeline(sqlite_db, case_id)


def test_a_sender_the_provider_rejects_changes_no_email(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    queue(sqlite_db, developers=2)
    before = snapshot(sqlite_db)
    sendgrid_server.statuses, sendgrid_server.error_field = [400, 400], "from.email"
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sendgrid(sendgrid_server), settings=settings()
    )
    assert report.stopped and report.failed == 0
    assert snapshot(sqlite_db) == before


def test_a_sender_our_check_rejects_stops_before_anything_is_claimed(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    queue(sqlite_db, developers=2)
    before = snapshot(sqlite_db)
    report = delivery.deliver_pending(
        sqlite_db,
        now=NOW,
        sender=sendgrid(sendgrid_server),
        settings=settings(sender="trust and safety@platform.example"),
    )
    assert "invalid sender address" in (report.stopped or "")
    assert report.claimed == 0 and sendgrid_server.requests == []
    assert snapshot(sqlite_db) == before


def test_an_unreachable_provider_changes_no_email(sqlite_db: Engine) -> None:
    queue(sqlite_db, developers=3)
    before = snapshot(sqlite_db)
    sender = SendGridSender(api_key=API_KEY, host=f"http://127.0.0.1:{closed_port()}", timeout=2)
    report = delivery.deliver_pending(sqlite_db, now=NOW, sender=sender, settings=settings())
    assert "SendGrid unreachable" in (report.stopped or "")
    assert (report.failed, report.retried) == (0, 0)
    assert snapshot(sqlite_db) == before


def test_an_unwritable_mail_folder_changes_no_email(sqlite_db: Engine, tmp_path: Path) -> None:
    queue(sqlite_db, developers=2)
    before = snapshot(sqlite_db)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the mail folder should be")
    from cases.email.senders.file import FileSender

    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=FileSender(blocker / "mail"), settings=settings()
    )
    assert "cannot write" in (report.stopped or "")
    assert snapshot(sqlite_db) == before


# --- the same, as the operator sees it ---------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"CASEWARD_EMAIL__SENDER": "trust and safety@platform.example"}, "invalid sender"),
        ({"CASEWARD_EMAIL__REPLY_TO": "appeals@@platform.example"}, "invalid sender"),
    ],
    ids=["sender with a space", "bad reply-to"],
)
@pytest.mark.parametrize("command", [["outbox", "send"], ["advance"]])
def test_cli_outage_is_one_line_exit_1_and_changes_no_email(
    cli_db: Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    expected: str,
    command: list[str],
) -> None:
    queue(cli_db, developers=3)
    before = snapshot(cli_db)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    code, out, err = cli(capsys, "--now", NOW.isoformat(), *command)
    assert code == 1, (out, err)
    assert expected in err and "Traceback" not in err
    assert snapshot(cli_db) == before
    if command == ["outbox", "send"]:
        assert out == "" and err.count("\n") == 1


def test_cli_missing_api_key_is_one_line_and_changes_no_email(
    cli_db: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queue(cli_db, developers=2)
    before = snapshot(cli_db)
    monkeypatch.setenv("CASEWARD_SIMULATION", "false")  # SendGrid is production only
    monkeypatch.setenv("CASEWARD_EMAIL__BACKEND", "sendgrid")
    reset_caches()
    code, out, err = cli(capsys, "outbox", "send")
    assert (code, out) == (1, "")
    assert err == (
        "caseward: e-mail delivery stopped: SENDGRID_API_KEY is not set; no other e-mail was "
        "changed and the next run retries them\n"
    )
    assert snapshot(cli_db) == before


# --- transient failures retry for days --------------------------------------------------


class DownFor:
    """A provider that answers 503 until ``until`` (each call says when it is)."""

    name = "down"

    def __init__(self, until: datetime) -> None:
        self.until = until
        self.calls: list[datetime] = []

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        self.calls.append(now)
        if now < self.until:
            raise TransientDeliveryError("SendGrid 503: down")
        return SendResult("ok")


def _retry_until_settled(engine: Engine, sender: DownFor, config: Settings) -> datetime:
    when = NOW
    for _ in range(1000):
        delivery.deliver_pending(engine, now=when, sender=sender, settings=config)
        (message,) = rows(engine)
        if message.status != OutboxStatus.PENDING:
            return when
        when = message.next_attempt_at
    raise AssertionError("never settled")


def test_a_day_long_outage_delays_email_but_fails_none(sqlite_db: Engine) -> None:
    queue(sqlite_db)
    sender = DownFor(NOW + timedelta(hours=30))
    settled = _retry_until_settled(sqlite_db, sender, Settings(email=EmailSettings()))
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.SENT
    assert NOW + timedelta(hours=30) <= settled <= NOW + timedelta(hours=31)  # capped at 1 h


def test_the_default_horizon_is_at_least_72_hours(sqlite_db: Engine) -> None:
    queue(sqlite_db)
    sender = DownFor(NOW + timedelta(days=30))
    settled = _retry_until_settled(sqlite_db, sender, Settings(email=EmailSettings()))
    (message,) = rows(sqlite_db)
    assert message.status == OutboxStatus.FAILED
    assert settled - sender.calls[0] >= timedelta(hours=72)
    assert settled - sender.calls[0] <= timedelta(hours=150)  # and not forever


@pytest.mark.parametrize("seed", range(5))
def test_the_horizon_holds_whatever_the_jitter(seed: int) -> None:
    import random

    config = EmailSettings(retry_horizon_hours=10)
    rng, waited, attempts = random.Random(seed), 0.0, 1
    while not delivery.retried_long_enough(attempts, config):
        waited += delivery.backoff_delay(attempts, config, rng=rng)
        attempts += 1
    assert waited >= 10 * 3600


# --- issue 9, item 7: each claim and each sent_at carries its own time --------------------


class Slow:
    """A provider that takes ``seconds`` per e-mail (real time)."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        time.sleep(self.seconds)
        return SendResult("ok")


def test_a_run_longer_than_the_lease_never_makes_its_own_claims_uncertain(
    sqlite_db: Engine,
) -> None:
    queue(sqlite_db, developers=6)
    config = Settings(
        simulation=False,
        email=EmailSettings(concurrency=1, batch_size=1, claim_lease_seconds=0.5),
    )
    uncertain: list[int] = []

    def another_worker() -> None:  # what a second `outbox send` does when it starts
        for _ in range(8):
            time.sleep(0.25)
            with session_scope(sqlite_db) as session:
                uncertain.extend(reconcile_stale(session, now=utcnow(), lease_seconds=0.5))

    watcher = threading.Thread(target=another_worker)
    started = utcnow()
    watcher.start()
    report = delivery.deliver_pending(sqlite_db, now=started, sender=Slow(0.3), settings=config)
    watcher.join()
    assert uncertain == [] and report.sent == 6
    sent = [m.sent_at for m in rows(sqlite_db) if m.sent_at is not None]
    assert len(sent) == 6 and sent == sorted(set(sent))  # each its own, later time
    assert sent[-1] - sent[0] >= timedelta(seconds=1.2)


def test_in_simulation_a_run_holds_its_instant(sqlite_db: Engine) -> None:
    queue(sqlite_db, developers=3)
    delivery.deliver_pending(sqlite_db, now=NOW, sender=Slow(0.05), settings=settings())
    assert {m.sent_at for m in rows(sqlite_db)} == {NOW}
