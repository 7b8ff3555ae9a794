"""``caseward doctor``: a sound database passes; each broken invariant is found, with its case."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import ActionStatus, CaseStatus, OutboxStatus, Severity
from cases.core.models import App, Case, Enforcement, OutboxMessage, PlatformAction
from cases.core.settings import get_settings
from cases.integrity import CHECKS, run_checks
from caseward.cli.main import main
from tests import factories as f
from tests.factories import TIMES, days

S = CaseStatus
LATER = TIMES["decide"] + days(1)


def _violations(engine: Engine) -> list[tuple[str, int | None]]:
    with session_scope(engine) as session:
        report = run_checks(session, now=LATER, settings=get_settings())
    return [(v.check, v.case_id) for v in report.violations]


@pytest.fixture
def cases(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A case in each step of the lifecycle, driven through the real services (the CLI runs
    in simulation mode, where ``--now`` is accepted)."""
    monkeypatch.setenv("CASEWARD_SIMULATION", "true")
    made = {s.value: f.case_in(engine, s) for s in (S.CHANGES_REQUESTED, S.RESOLVED, S.ENFORCED)}
    made["closed"] = f.case_in(engine, S.CLOSED, severity=Severity.HIGH)
    return made


def test_a_sound_database_has_no_violations(
    engine: Engine, cases: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _violations(engine) == []
    assert main(["--now", LATER.isoformat(), "doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["violations"] == [] and report["checked"]["cases"] == 4


def _actions_of(session: Session, case_id: int) -> object:
    return select(PlatformAction.id).join(Enforcement).where(Enforcement.case_id == case_id)


def _first_outbox(session: Session, case_id: int, template: str) -> OutboxMessage:
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.case_id == case_id, OutboxMessage.template == template)
        .order_by(OutboxMessage.id)
    ).first()  # type: ignore[return-value]


def _status_edited(s: Session, c: dict[str, int]) -> int:
    s.execute(update(Case).where(Case.id == c["resolved"]).values(status=S.CLOSED))
    return c["resolved"]


def _email_twice(s: Session, c: dict[str, int]) -> int:
    sent = _first_outbox(s, c["enforced"], "outreach")
    keys = [c.key for c in OutboxMessage.__table__.columns if c.key != "id"]
    row = {k: getattr(sent, k) for k in keys}
    s.execute(insert(OutboxMessage).values(row | {"idempotency_key": "x", "message_id": "y"}))
    return c["enforced"]


def _request_never_delivered(s: Session, c: dict[str, int]) -> int:
    request = _first_outbox(s, c["enforced"], "feature_change_request")
    request.status, request.sent_at = OutboxStatus.FAILED, None
    return c["enforced"]


def _notice_missing(s: Session, c: dict[str, int]) -> int:
    s.execute(delete(OutboxMessage).where(OutboxMessage.template == "token_revoked"))
    return c["enforced"]


def _status_restored_by_hand(s: Session, c: dict[str, int]) -> int:
    case = s.get_one(Case, c["enforced"])
    app_id = s.scalars(select(App.id).join(Case.apps).where(Case.id == case.id)).one()
    s.execute(update(App).where(App.id == app_id).values(status="active"))
    return c["enforced"]


def _claim_held(s: Session, c: dict[str, int]) -> int:
    message = _first_outbox(s, c["changes_requested"], "outreach")
    message.status, message.claimed_at = OutboxStatus.SENDING, TIMES["outreach"]
    return c["changes_requested"]


def _closed_with_planned_action(s: Session, c: dict[str, int]) -> int:
    s.execute(
        update(PlatformAction)
        .where(PlatformAction.id.in_(_actions_of(s, c["closed"])))  # type: ignore[arg-type]
        .values(status=ActionStatus.PLANNED)
    )
    return c["closed"]


BREAKAGES: dict[str, Callable[[Session, dict[str, int]], int]] = {
    "replay": _status_edited,
    "email-once": _email_twice,
    "notice-before-enforcement": _request_never_delivered,
    "applied-noticed": _notice_missing,
    "standing": _status_restored_by_hand,
    "claims": _claim_held,
    "terminal-settled": _closed_with_planned_action,
}


def test_every_check_has_a_breakage_here() -> None:
    assert set(BREAKAGES) == set(CHECKS)


@pytest.mark.parametrize("check", sorted(BREAKAGES))
def test_a_broken_invariant_is_found_with_its_case(
    engine: Engine, cases: dict[str, int], check: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with session_scope(engine) as session:
        case_id = BREAKAGES[check](session, cases)
    assert (check, case_id) in _violations(engine)
    assert main(["--now", LATER.isoformat(), "doctor"]) == 1
    captured = capsys.readouterr()
    assert check in captured.out and str(case_id) in captured.out
    assert "violation(s)" in captured.err
