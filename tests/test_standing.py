"""An app's or account's status comes from all its actions still in force, across cases."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from cases.core.db import session_scope
from cases.core.enums import AccountStatus, AppStatus, CaseStatus, Policy, Severity
from cases.core.models import App, Developer
from tests import factories as f
from tests.factories import TIMES, days


def _shared_app(engine: Engine) -> tuple[str, str]:
    with session_scope(engine) as session:
        owner = f.developer(session)
        return f.app(session, owner=owner).id, owner.id


def _overturn(engine: Engine, case_id: int, *, at: int) -> None:
    f.appeal(engine, case_id)
    f.decide(engine, case_id, overturn=True, now=TIMES["decide"] + days(at))


def _statuses(engine: Engine, app_id: str, developer_id: str) -> tuple[str, str]:
    with session_scope(engine) as session:
        return session.get_one(App, app_id).status, session.get_one(Developer, developer_id).status


@pytest.mark.parametrize("ban_first", [True, False], ids=["ban-then-revoke", "revoke-then-ban"])
def test_overturning_one_case_restores_only_what_no_other_case_enforces(
    engine: Engine, ban_first: bool
) -> None:
    app_id, developer_id = _shared_app(engine)
    on = ([app_id], [developer_id])
    severities = [Severity.HIGH, Severity.MEDIUM]  # spam: ban the app; revoke its token
    if not ban_first:
        severities.reverse()
    first, second = (
        f.case_in(engine, CaseStatus.ENFORCED, severity=s, policy=Policy.SPAM, on=on)
        for s in severities
    )
    assert _statuses(engine, app_id, developer_id) == (AppStatus.BANNED, AccountStatus.ACTIVE)

    _overturn(engine, first, at=0)
    left = AppStatus.TOKEN_REVOKED if ban_first else AppStatus.BANNED
    assert _statuses(engine, app_id, developer_id) == (left, AccountStatus.ACTIVE)

    _overturn(engine, second, at=1)
    assert _statuses(engine, app_id, developer_id) == (AppStatus.ACTIVE, AccountStatus.ACTIVE)


def test_a_suspension_stays_while_another_case_still_suspends_the_account(engine: Engine) -> None:
    app_id, developer_id = _shared_app(engine)
    cases = [
        f.case_in(
            engine,
            CaseStatus.ENFORCED,
            severity=Severity.HIGH,
            policy=Policy.RATE_LIMIT_CIRCUMVENTION,  # ban the app and suspend the account
            on=([app_id], [developer_id]),
        )
        for _ in range(2)
    ]
    _overturn(engine, cases[0], at=0)
    assert _statuses(engine, app_id, developer_id) == (AppStatus.BANNED, AccountStatus.SUSPENDED)
    _overturn(engine, cases[1], at=1)
    assert _statuses(engine, app_id, developer_id) == (AppStatus.ACTIVE, AccountStatus.ACTIVE)
