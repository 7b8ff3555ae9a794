"""A partly applied enforcement is recorded as the platform reported it: what was applied is
noticed to the developer and appealable whatever happens to the rest, and a decline reverses
it. Through the HTTP adapter against the local fake platform."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import (
    AccountStatus,
    ActionKind,
    ActionStatus,
    AppStatus,
    CaseStatus,
    Policy,
    Severity,
)
from cases.core.errors import GuardFailed
from cases.core.models import App, CaseEvent, Developer, OutboxMessage, PlatformAction
from cases.core.settings import get_settings
from cases.enforcement import execution
from cases.enforcement.platform import get_adapter
from cases.lifecycle import escalation, service, sweeper
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import TIMES, days
from tests.platform_fixtures import FakePlatform, platform

__all__ = ["platform"]
NOW = TIMES["enforce"]


@pytest.fixture
def due(engine: Engine, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch) -> int:
    """A case due for a ban of its app and the suspension of its account, approved by ann;
    enforcement goes through the fake platform."""
    case_id = f.case_in(
        engine,
        CaseStatus.ENFORCEMENT_DUE,
        severity=Severity.HIGH,
        policy=Policy.RATE_LIMIT_CIRCUMVENTION,
    )
    with session_scope(engine) as session:
        escalation.approve_enforcement(
            session, case_id=case_id, actor="lead-ann", reason="clear abuse", now=NOW
        )
    monkeypatch.setenv("CASEWARD_PLATFORM__ADAPTER", "http")
    monkeypatch.setenv("CASEWARD_PLATFORM__API_URL", platform.url)
    monkeypatch.setenv("CASEWARD_PLATFORM__MAX_ATTEMPTS", "1")
    reset_caches()
    return case_id


def _actions(engine: Engine, case_id: int) -> dict[ActionKind, tuple[ActionStatus, str | None]]:
    with session_scope(engine) as session:
        decision = escalation.enforcement_or_raise(
            session, service.get_or_raise(session, case_id=case_id)
        )
        return {a.kind: (a.status, a.last_error) for a in decision.actions}


def _templates(engine: Engine, case_id: int) -> list[str]:
    with session_scope(engine) as session:
        query = select(OutboxMessage.template).where(OutboxMessage.case_id == case_id)
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def _subjects(engine: Engine, case_id: int) -> tuple[str, str]:
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        return case.apps[0].id, case.developers[0].id


def test_a_refusal_after_a_ban_leaves_the_ban_recorded_noticed_and_appealable(
    engine: Engine, platform: FakePlatform, due: int
) -> None:
    app_id, developer_id = _subjects(engine, due)
    platform.refused = {developer_id}  # the platform bans the app, then refuses the suspension
    report = sweeper.run_step(engine, "enforce", now=NOW)
    assert "enforced in part" in report.failed[due] and "HTTP 422" in report.failed[due]
    actions = _actions(engine, due)
    assert actions[ActionKind.BAN_APP] == (ActionStatus.APPLIED, None)
    assert actions[ActionKind.SUSPEND_ACCOUNT][0] is ActionStatus.PLANNED
    assert "HTTP 422" in str(actions[ActionKind.SUSPEND_ACCOUNT][1])
    with session_scope(engine) as session:
        assert service.get_or_raise(session, case_id=due).status is CaseStatus.ENFORCED
        assert session.get_one(App, app_id).status is AppStatus.BANNED
        assert session.get_one(Developer, developer_id).status is AccountStatus.ACTIVE
        enforce = service.events(session, case_id=due)[-1]
    assert enforce.kind == "enforce" and enforce.data["not_applied"][0]["target_id"] == developer_id
    assert _templates(engine, due)[-1] == "app_banned"  # the developer is told of the ban only

    # the next run asks again; a refusal of an enforced case is final and recorded
    report = sweeper.run_step(engine, "enforce", now=NOW + days(1))
    assert actions_now(engine, due)[ActionKind.SUSPEND_ACCOUNT] is ActionStatus.FAILED
    assert sweeper.run_step(engine, "enforce", now=NOW + days(2)).failed == {}

    f.appeal(engine, due, now=NOW + days(3))
    f.decide(engine, due, overturn=True, now=NOW + days(4))
    # the decision stands at once (the ban is no longer in force for Caseward) ...
    assert actions_now(engine, due)[ActionKind.BAN_APP] is ActionStatus.REVERSING
    with session_scope(engine) as session:
        assert session.get_one(App, app_id).status is AppStatus.ACTIVE
    # ... and the platform is told after it, until it answers
    platform.script = [503]
    report = sweeper.run_step(engine, "enforce", now=NOW + days(4))
    assert "HTTP 503" in report.failed[due] and platform.status[app_id] == "banned"
    assert sweeper.run_step(engine, "enforce", now=NOW + days(5)).failed == {}
    assert platform.status[app_id] == "active"  # the platform lifted the ban
    assert actions_now(engine, due)[ActionKind.BAN_APP] is ActionStatus.REVERSED


def actions_now(engine: Engine, case_id: int) -> dict[ActionKind, ActionStatus]:
    return {kind: status for kind, (status, _) in _actions(engine, case_id).items()}


def test_nothing_applied_keeps_the_case_due_and_says_why(
    engine: Engine, platform: FakePlatform, due: int
) -> None:
    app_id, _ = _subjects(engine, due)
    platform.refused = {app_id}
    platform.script = ["ok", 503]  # the ban is refused; the suspension finds the platform down
    report = sweeper.run_step(engine, "enforce", now=NOW)
    assert "HTTP 422" in report.failed[due] and "enforced in part" not in report.failed[due]
    assert set(actions_now(engine, due).values()) == {ActionStatus.PLANNED}
    with session_scope(engine) as session:
        assert service.get_or_raise(session, case_id=due).status is CaseStatus.ENFORCEMENT_DUE
    assert "app_banned" not in _templates(engine, due)
    platform.refused = set()
    assert sweeper.run_step(engine, "enforce", now=NOW + days(1)).done == [due]
    assert set(actions_now(engine, due).values()) == {ActionStatus.APPLIED}


def test_a_decline_reverses_what_the_platform_applied(
    engine: Engine, platform: FakePlatform, due: int
) -> None:
    app_id, developer_id = _subjects(engine, due)
    # a run claims both actions, the platform bans the app, the ban is recorded, and the run
    # stops before the suspension's answer and before any notice
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=due, lock=True)
        ban, suspension = escalation.claim_actions(
            session, case=case, worker="w", now=NOW, lease_seconds=60
        )
    with session_scope(engine) as session:
        outcome = execution.call(get_adapter(session, get_settings()), ban)
        execution.record(session, outcome, now=NOW)
    assert platform.status[app_id] == "banned"

    def decline(at: object) -> None:
        with session_scope(engine) as session:
            escalation.decline_enforcement(
                session,
                case_id=due,
                actor="lead-bob",
                reason="a mistake",
                now=at,  # type: ignore[arg-type]
            )

    with pytest.raises(GuardFailed, match="not recorded yet; run caseward advance"):
        decline(NOW)  # the suspension's answer may still come
    with session_scope(engine) as session:  # its answer: not applied (the run stopped)
        execution.record(session, execution.not_called(suspension, "stopped"), now=NOW)
    decline(NOW + days(1))
    sweeper.run_step(engine, "enforce", now=NOW + days(1))  # what `cases decline` runs next
    assert platform.status[app_id] == "active"  # the ban is lifted on the platform
    assert developer_id not in platform.status  # the suspension was never sent
    assert actions_now(engine, due) == {
        ActionKind.BAN_APP: ActionStatus.REVERSED,
        ActionKind.SUSPEND_ACCOUNT: ActionStatus.DECLINED,
    }
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=due)
        assert (case.status, case.outcome) == (CaseStatus.RESOLVED, "declined")
        assert session.get_one(App, app_id).status is AppStatus.ACTIVE
        declined = service.events(session, case_id=due)[-1]
    assert declined.data["reversed"] == [
        {"kind": "ban_app", "target_type": "app", "target_id": app_id}
    ]
    assert _templates(engine, due)[-1] == "enforcement_declined"
    with session_scope(engine) as session:
        text = session.scalars(
            select(OutboxMessage.text_body)
            .where(OutboxMessage.case_id == due)
            .order_by(OutboxMessage.id.desc())
        ).first()
    assert text is not None and "they are lifted" in text and "Nothing has been" not in text


def test_a_run_killed_during_a_platform_call_keeps_what_was_applied(
    engine: Engine, platform: FakePlatform, due: int, tmp_path: Path
) -> None:
    app_id, developer_id = _subjects(engine, due)
    platform.script = ["ok", "hold"]  # the ban is applied; the suspension's call never returns
    env = os.environ | {"CASEWARD_SIMULATION": "true", "CASEWARD_NOW": NOW.isoformat()}
    run = subprocess.Popen(
        [sys.executable, "-m", "caseward", "advance", "--no-deliver"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert platform.held.wait(60), "the advance never reached the platform"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
        platform.release.set()
    assert run.returncode == -signal.SIGKILL
    assert platform.effects == [("/actions", "ban_app", app_id)]
    # the ban the platform applied is on record; the suspension's answer is outstanding
    assert actions_now(engine, due) == {
        ActionKind.BAN_APP: ActionStatus.APPLIED,
        ActionKind.SUSPEND_ACCOUNT: ActionStatus.APPLYING,
    }
    with pytest.raises(GuardFailed, match="not recorded yet"), session_scope(engine) as session:
        escalation.decline_enforcement(
            session, case_id=due, actor="lead-bob", reason="hmm", now=NOW + days(1)
        )
    # the next run, after the claim's lease, asks again and notices everything
    report = sweeper.run_step(engine, "enforce", now=NOW + days(1))
    assert report.done == [due]
    assert set(actions_now(engine, due).values()) == {ActionStatus.APPLIED}
    assert sorted(_templates(engine, due)[-2:]) == ["account_suspended", "app_banned"]
    assert [e[1] for e in platform.effects] == ["ban_app", "suspend_account"]  # once each
    with session_scope(engine) as session:
        assert session.get_one(Developer, developer_id).status is AccountStatus.SUSPENDED
        kinds = session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == due)).all()
        claims = session.scalars(select(PlatformAction.claimed_by)).all()
    assert kinds.count("enforce") == 1 and set(claims) == {None}
