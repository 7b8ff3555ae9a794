"""submit-statements under the Prefect test harness, against a local Transparency Database."""

from __future__ import annotations

import pytest
from prefect.client.schemas.objects import State
from sqlalchemy import Engine

from flows.submit_statements import submit_statements
from tests import factories as f
from tests.prefect_fixtures import prefect_harness  # noqa: F401  (the session fixture)
from tests.transparency_server import TransparencyDatabase, transparency_api, transparency_db

__all__ = ["transparency_api", "transparency_db"]
pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
NOW = f.TIMES["enforce"].isoformat()


def test_the_flow_submits_then_has_nothing_left(
    sqlite_engine: Engine, transparency_api: TransparencyDatabase
) -> None:
    f.case_in(sqlite_engine, "enforced")
    state: State = submit_statements(now=NOW, return_state=True)
    assert state.is_completed() and state.message == "1 statement(s) submitted, 0 already there"
    assert len(transparency_api.stored) == 1
    again: State = submit_statements(now=NOW, return_state=True)
    assert again.is_completed() and len(transparency_api.posts) == 1


def test_the_flow_fails_when_the_database_stays_unavailable(
    sqlite_engine: Engine, transparency_api: TransparencyDatabase
) -> None:
    f.case_in(sqlite_engine, "enforced")
    transparency_api.script = [503, 503, 503]
    state: State = submit_statements(now=NOW, return_state=True)
    assert state.is_failed() and "unavailable" in str(state.message)
    assert transparency_api.stored == {}


def test_the_flow_fails_at_once_without_an_endpoint(sqlite_engine: Engine) -> None:
    f.case_in(sqlite_engine, "enforced")
    state: State = submit_statements(now=NOW, return_state=True)
    assert state.is_failed()
