"""Recovery is one command: ``outbox resolve`` and ``cases unblock-delivery`` take filters,
count with ``--dry-run``, and act row by row with one timeline event each."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cases.core.db import Base, get_engine, session_scope
from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.models import Case, CaseEvent
from cases.email import delivery
from cases.email.message import OutgoingEmail
from cases.email.senders.base import PermanentDeliveryError, SendResult
from caseward.cli import main
from tests.email_fixtures import NOW
from tests.test_outbox_delivery import queue, rows, settings

FAILED_AT = NOW + timedelta(hours=1)
LATER = NOW + timedelta(hours=3)


class Bounces:
    """A provider that refuses every recipient (a permanent, per-message failure)."""

    name = "bounces"

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        raise PermanentDeliveryError("550 mailbox unavailable")


@pytest.fixture
def failed() -> dict[str, list[int]]:
    """Three cases whose outreach failed and two whose change request failed (all blocked)."""
    engine = get_engine()
    Base.metadata.create_all(engine)
    cases = {
        "outreach": [queue(engine, template=EmailTemplate.OUTREACH) for _ in range(3)],
        "feature_change_request": [queue(engine) for _ in range(2)],
    }
    report = delivery.deliver_pending(engine, now=FAILED_AT, sender=Bounces(), settings=settings())
    assert report.failed == 5
    return cases


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["--now", LATER.isoformat(), "--actor", "lead-ann", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def state(engine: Engine) -> tuple[list[tuple[int, OutboxStatus]], list[bool], int]:
    with session_scope(engine) as session:
        events = session.scalar(select(func.count()).select_from(CaseEvent)) or 0
        blocked = list(session.scalars(select(Case.delivery_blocked).order_by(Case.id)))
    return [(m.id, m.status) for m in rows(engine)], blocked, events


def resolved_events(engine: Engine) -> int:
    with session_scope(engine) as session:
        query = select(func.count()).where(CaseEvent.kind == "delivery_resolved")
        return int(session.scalar(query) or 0)


def test_resend_by_template_counts_then_acts_per_row(
    failed: dict[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    engine = get_engine()
    before = state(engine)
    code, counted, _ = cli(
        capsys, "outbox", "resolve", "--resend", "--template", "outreach", "--dry-run"
    )
    assert code == 0 and counted["count"] == 3
    assert state(engine) == before  # a dry run changes nothing

    code, done, err = cli(capsys, "outbox", "resolve", "--resend", "--template", "outreach")
    assert code == 0, err
    assert len(done["done"]) == 3 and done["refused"] == {}
    by_template = {(m.template, m.status) for m in rows(engine)}
    assert by_template == {
        ("outreach", OutboxStatus.PENDING),
        ("feature_change_request", OutboxStatus.FAILED),
    }
    assert resolved_events(engine) == 3  # one timeline event per e-mail, as one by one


def test_filters_by_case_since_and_all(
    failed: dict[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    engine = get_engine()
    first = failed["outreach"][0]
    assert (
        cli(capsys, "outbox", "resolve", "--resend", "--case", str(first), "--dry-run")[1]["count"]
        == 1
    )
    since_after = (FAILED_AT + timedelta(minutes=1)).isoformat()
    assert (
        cli(capsys, "outbox", "resolve", "--resend", "--since", since_after, "--dry-run")[1][
            "count"
        ]
        == 0
    )
    code, done, _ = cli(capsys, "outbox", "resolve", "--resend", "--all")
    assert code == 0 and len(done["done"]) == 5
    assert {m.status for m in rows(engine)} == {OutboxStatus.PENDING}


@pytest.mark.parametrize(
    "argv",
    [
        ["outbox", "resolve", "--resend"],  # neither an id nor a filter
        ["outbox", "resolve", "--sent", "--status", "failed", "--all"],
        ["outbox", "resolve", "1", "--resend", "--all"],
        ["outbox", "resolve", "--resend", "--since", "yesterday"],
        ["outbox", "resolve", "--sent", "--status", "failed"],  # --sent is for uncertain only
        ["cases", "unblock-delivery", "--reason", "r"],
        ["cases", "unblock-delivery", "--all"],  # no reason
    ],
)
def test_recovery_without_a_clear_selection_is_refused(
    failed: dict[str, list[int]], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    engine = get_engine()
    before = state(engine)
    code, out, err = cli(capsys, *argv)
    assert (code, out) == (2, None) and err.count("\n") == 1, err
    assert state(engine) == before


def test_unblock_delivery_by_template_and_all(
    failed: dict[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    engine = get_engine()
    assert all(state(engine)[1])
    code, counted, _ = cli(
        capsys, "cases", "unblock-delivery", "--template", "feature_change_request", "--dry-run"
    )
    assert code == 0 and counted["ids"] == failed["feature_change_request"]
    code, done, _ = cli(
        capsys,
        "cases",
        "unblock-delivery",
        "--template",
        "feature_change_request",
        "--reason",
        "addresses fixed",
    )
    assert code == 0 and done["done"] == failed["feature_change_request"]
    code, done, _ = cli(capsys, "cases", "unblock-delivery", "--all", "--reason", "called them")
    assert code == 0 and done["done"] == failed["outreach"]
    assert not any(state(engine)[1])
    # one case at a time still works as before
    code, _, err = cli(capsys, "cases", "unblock-delivery", str(failed["outreach"][0]),
                       "--reason", "again")  # fmt: skip
    assert code == 2 and "has no blocked delivery" in err
