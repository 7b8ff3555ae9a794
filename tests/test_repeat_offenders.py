"""Repeat offenders: enforcements not overturned are strikes for a window; the catalogue's
consequences (higher severity, shorter deadline, a lead's approval) are given when a case is
confirmed; the e-mail says "the second time"; an overturned appeal removes its strike;
strikes expire; ``cases show`` and ``developers show`` list them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text

from cases.core.db import make_engine, session_scope
from cases.core.enums import CaseStatus, EmailTemplate, Policy, Severity
from cases.core.migrate import alembic_config
from cases.core.models import Case, CaseEvent, Developer, OutboxMessage, case_developers
from cases.core.schemas import CaseCreate
from cases.enforcement import appeals, strikes
from cases.lifecycle import escalation, history, operations, service
from caseward.cli.main import main
from tests import factories as f
from tests.factories import TIMES, days

LATER = TIMES["enforce"] + days(14)  # two weeks after the factory's enforcements


def developer_of(engine: Engine, case_id: int) -> str:
    with session_scope(engine) as session:
        return service.get_or_raise(session, case_id=case_id).developers[0].id


def add_developer(engine: Engine, case_id: int, developer_id: str) -> None:
    """Make ``developer_id`` a party of ``case_id`` too (a second account of the case)."""
    with session_scope(engine) as session:
        session.execute(insert(case_developers).values(case_id=case_id, developer_id=developer_id))


def new_case(
    engine: Engine,
    developer_ids: list[str],
    *,
    severity: Severity = Severity.MEDIUM,
    now: datetime = LATER,
) -> int:
    """A new case on a new app of the first developer, opened by detection."""
    with session_scope(engine) as session:
        created = f.app(session, owner=session.get_one(Developer, developer_ids[0]))
        return service.open_case(
            session,
            case_in=CaseCreate(
                policy=Policy.SPAM,
                app_ids=[created.id],
                developer_ids=developer_ids,
                reason="spam again",
                severity=severity,
                evidence={"spam_reports_per_1000_posts": 9.0},
            ),
            actor="detector",
            now=now,
        ).id


def confirm(engine: Engine, case_id: int, now: datetime = LATER) -> Case:
    with session_scope(engine) as session:
        return operations.confirm(session, case_id=case_id, actor="lead-ann", reason="ok", now=now)


def outreach_texts(engine: Engine, case_id: int, now: datetime = LATER) -> dict[str, str]:
    """The outreach each developer of the case receives, by developer id."""
    with session_scope(engine) as session:
        operations.send_outreach(session, case_id=case_id, now=now)
        rows = session.execute(
            select(OutboxMessage.developer_id, OutboxMessage.text_body).where(
                OutboxMessage.case_id == case_id,
                OutboxMessage.template == EmailTemplate.OUTREACH.value,
            )
        )
        return {d: body for d, body in rows}


def test_a_second_case_is_confirmed_as_a_repeat_offence(engine: Engine) -> None:
    first = f.case_in(engine, "enforced")
    offender = developer_of(engine, first)
    with session_scope(engine) as session:
        bystander = f.developer(session).id
    case_id = new_case(engine, [offender, bystander])

    confirmed = confirm(engine, case_id)

    assert confirmed.severity == Severity.HIGH  # raised one level (medium -> high)
    assert confirmed.prior_strikes == {offender: 1}
    assert (confirmed.change_days, confirmed.lead_approval) == (None, False)
    with session_scope(engine) as session:
        event = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "confirm")
        ).one()
        assert event.data["repeat_offence"] == {
            "strikes": 1,
            "severity": ["medium", "high"],
            "change_days": None,
            "lead_approval": False,
        }
        # the projection is the event log's: replay gives the same case
        events = service.events(session, case_id=case_id)
        assert history.replay(events) == history.Snapshot.of(
            service.get_or_raise(session, case_id=case_id)
        )
    texts = outreach_texts(engine, case_id)
    assert "This is the second time in the past 365 days" in " ".join(texts[offender].split())
    assert "second time" not in texts[bystander]  # one developer's record is theirs alone


def test_two_strikes_shorten_the_deadline_and_need_a_leads_approval(engine: Engine) -> None:
    first, second = f.case_in(engine, "enforced"), f.case_in(engine, "enforced")
    offender = developer_of(engine, first)
    add_developer(engine, second, offender)
    case_id = new_case(engine, [offender], severity=Severity.LOW)

    confirmed = confirm(engine, case_id)
    assert confirmed.prior_strikes == {offender: 2}
    assert (confirmed.severity, confirmed.change_days, confirmed.lead_approval) == (
        Severity.MEDIUM,
        14,
        True,
    )
    assert "third time" in " ".join(outreach_texts(engine, case_id)[offender].split())
    f.deliver_case(engine, case_id, now=LATER)
    requested = LATER + days(15)
    with session_scope(engine) as session:
        operations.request_changes(
            session, case_id=case_id, actor="caseward", reason="no answer", now=requested
        )
        mail = session.scalars(
            select(OutboxMessage.text_body).where(
                OutboxMessage.case_id == case_id,
                OutboxMessage.template == EmailTemplate.FEATURE_CHANGE_REQUEST.value,
            )
        ).one()
    assert "(14 days from this e-mail)" in mail
    f.deliver_case(engine, case_id, now=requested)
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert case.deadline == requested + days(14)  # not the configured 30
    with session_scope(engine) as session:
        escalation.escalate(session, case_id=case_id, now=requested + days(15))
        planned = escalation.enforcement_or_raise(
            session, service.get_or_raise(session, case_id=case_id)
        )
        # a medium spam case revokes tokens, which the catalogue lets run on its own; a
        # repeat offender's waits for a lead
        assert [a.kind.value for a in planned.actions] == ["revoke_token"]
        assert planned.requires_approval is True


def test_strikes_expire_after_the_window(engine: Engine) -> None:
    offender = developer_of(engine, f.case_in(engine, "enforced"))
    expired_at = TIMES["enforce"] + days(365)
    with session_scope(engine) as session:
        assert strikes.current(session, [offender], now=expired_at - days(1)) == {offender: 1}
        assert strikes.current(session, [offender], now=expired_at) == {}
        assert [s.status for s in strikes.history(session, offender, now=expired_at)] == ["expired"]
    case_id = new_case(engine, [offender], now=expired_at)
    confirmed = confirm(engine, case_id, now=expired_at)
    assert (confirmed.severity, confirmed.prior_strikes) == (Severity.MEDIUM, {})


def test_an_overturned_appeal_removes_its_strike(engine: Engine) -> None:
    appealed = f.case_in(engine, "appealed")
    offender = developer_of(engine, appealed)
    with session_scope(engine) as session:
        assert strikes.current(session, [offender], now=TIMES["decide"]) == {offender: 1}
        appeals.decide_appeal(
            session,
            case_id=appealed,
            reviewer="lead-bob",
            overturn=True,
            reason="the reports were coordinated",
            now=TIMES["decide"],
        )
    with session_scope(engine) as session:
        assert strikes.current(session, [offender], now=LATER) == {}
        assert [s.status for s in strikes.history(session, offender, now=LATER)] == ["overturned"]
    confirmed = confirm(engine, new_case(engine, [offender]))
    assert (confirmed.severity, confirmed.prior_strikes) == (Severity.MEDIUM, {})


def test_a_bulk_confirmation_gives_the_same_consequences(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    offender = developer_of(engine, f.case_in(engine, "enforced"))
    repeat = new_case(engine, [offender])
    with session_scope(engine) as session:
        newcomer = f.developer(session).id
    first_time = new_case(engine, [newcomer])
    code = main(["--now", LATER.isoformat(), "--actor", "lead-ann", "cases", "confirm",
                 "--status", "opened", "--reason", "ok", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with session_scope(engine) as session:
        found = {
            c.id: (c.severity, c.prior_strikes)
            for c in service.get_many(session, case_ids=[repeat, first_time])
        }
    assert found == {repeat: (Severity.HIGH, {offender: 1}), first_time: (Severity.MEDIUM, {})}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--now", LATER.isoformat(), *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return code, captured.out


def test_cases_show_and_developers_show_list_strikes(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    enforced = f.case_in(engine, "enforced")
    offender = developer_of(engine, enforced)
    case_id = new_case(engine, [offender])
    confirm(engine, case_id)

    _, shown = cli(capsys, "cases", "show", str(case_id))
    flat = " ".join(shown.split())
    assert f"developers {offender} (1 strike)" in flat
    assert f"at confirmation strikes {offender} (1 strike)" in flat
    assert "repeat offender (1 strike): severity medium → high" in flat
    _, raw = cli(capsys, "cases", "show", str(case_id), "--json")
    assert json.loads(raw)["developer_strikes"] == {offender: 1}

    _, raw = cli(capsys, "developers", "show", offender, "--json")
    detail: dict[str, Any] = json.loads(raw)
    assert detail["active_strikes"] == 1 and detail["strike_window_days"] == 365
    assert [(s["case_id"], s["status"]) for s in detail["strikes"]] == [(enforced, "active")]
    assert sorted(c["id"] for c in detail["cases"]) == [enforced, case_id]
    assert {m["template"] for m in detail["emails"]} >= {"outreach", "token_revoked"}
    assert len(detail["apps"]) == 2
    _, shown = cli(capsys, "developers", "show", offender)
    assert "strikes: 1 active" in shown and "Strikes (1)" in shown

    code = main(["developers", "show", "nobody"])
    assert code == 2 and "no developer with id nobody" in capsys.readouterr().err


def test_the_migration_keeps_every_case(tmp_path: Path) -> None:
    """A database at the revision before strikes keeps its cases, which read as confirmed
    without strikes, and still replay from their events."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO cases (id, policy, severity, status, reason, source, evidence, "
                "opened_by, created_at, status_changed_at, extension_granted, delivery_blocked, "
                "urgent, event_count, version) VALUES (1, 'spam', 'medium', 'opened', 'r', "
                "'manual', '{}', 'ann', '2026-11-02 09:00:00', '2026-11-02 09:00:00', 0, 0, 0, "
                "0, 1)"
            )
        )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with session_scope(engine) as session:
        case = session.get_one(Case, 1)
        assert (case.prior_strikes, case.change_days, case.lead_approval) == ({}, None, False)
        assert case.status is CaseStatus.OPENED
    engine.dispose()
