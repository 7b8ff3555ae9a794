"""Decision flows: pause for a typed input, resume from the UI or the CLI, and time out."""

from __future__ import annotations

import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.states import Suspended
from sqlalchemy import Engine, func, select

from cases.core.db import session_scope
from cases.core.enums import AppStatus, CaseStatus, Severity
from cases.core.models import App, CaseEvent, Enforcement
from cases.enforcement import appeals
from cases.lifecycle import escalation, operations, service, sweeper
from cases.lifecycle.states import Op
from flows.approve_enforcement import approve_enforcement
from flows.hitl import Kind, expire_waiting, resume_waiting, waiting_runs
from flows.review_appeal import review_appeal
from tests import factories as f
from tests.factories import T0, days
from tests.prefect_fixtures import (
    Background,
    prefect_harness,  # noqa: F401  (the session fixture)
)

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _enforced_or_due(engine: Engine, severity: Severity) -> int:
    """A spam case past its change deadline: HIGH waits for approval (ban), MEDIUM is enforced."""
    with session_scope(engine) as session:
        case = f.open_case(session, severity=severity)
        operations.confirm(session, case_id=case.id, actor="lead-ann", reason="spam", now=T0)
        case_id = case.id
    for at in (T0, T0 + days(15), T0 + days(46)):
        sweeper.advance(engine, now=at)
        f.deliver_pending(engine, now=at)
    return case_id


def _appealed(engine: Engine) -> int:
    case_id = _enforced_or_due(engine, Severity.MEDIUM)
    with session_scope(engine) as session:
        appeals.submit_appeal(
            session, case_id=case_id, actor="d-dev", statement="fixed", now=T0 + days(50)
        )
    return case_id


def _wait_until_paused(case_id: int, kind: Kind, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not waiting_runs(case_id, kind):
        assert time.monotonic() < deadline, "the flow never paused"
        time.sleep(0.2)
    time.sleep(0.5)  # the input schema is saved just after the pause


def _latest_artifact(key: str) -> str | None:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return str(found[0].data) if found else None


def _count(engine: Engine, case_id: int, op: Op) -> int:
    with session_scope(engine) as session:
        query = select(func.count()).where(CaseEvent.case_id == case_id, CaseEvent.kind == op)
        return int(session.scalar(query) or 0)


def test_approval_given_in_the_ui_resumes_and_records(sqlite_engine: Engine) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)
    run = Background(
        lambda: approve_enforcement(case_id, timeout_hours=0.05, poll_seconds=1, return_state=True)
    )
    _wait_until_paused(case_id, "approve-enforcement")

    assert resume_waiting(case_id, "approve-enforcement", "approve", "ban fits", "lead-bob")

    state = run.join()
    assert (state.name, state.is_completed()) == ("Approved", True)
    with session_scope(sqlite_engine) as session:
        decision = session.scalars(select(Enforcement).where(Enforcement.case_id == case_id)).one()
        assert decision.approved_by == "lead-bob"


def test_decision_recorded_by_the_cli_is_not_recorded_twice(sqlite_engine: Engine) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)
    run = Background(
        lambda: approve_enforcement(case_id, timeout_hours=0.05, poll_seconds=1, return_state=True)
    )
    _wait_until_paused(case_id, "approve-enforcement")
    with session_scope(sqlite_engine) as session:  # what `caseward cases approve-enforcement` does
        escalation.approve_enforcement(
            session, case_id=case_id, actor="lead-cy", reason="urgent", now=T0 + days(47)
        )

    assert resume_waiting(case_id, "approve-enforcement", "approve", "urgent", "lead-cy")

    assert run.join().name == "AlreadyDecided"
    assert _count(sqlite_engine, case_id, Op.APPROVE_ENFORCEMENT) == 1


def test_no_decision_in_time_escalates(sqlite_engine: Engine) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)

    state = approve_enforcement(case_id, timeout_hours=2 / 3600, poll_seconds=1, return_state=True)

    assert (state.name, state.is_failed()) == ("TimedOut", True)
    assert "within" in (state.message or "")
    page = _latest_artifact(f"case-{case_id}-escalation")
    assert page is not None and "approve-enforcement" in page
    with session_scope(sqlite_engine) as session:
        assert service.get_or_raise(session, case_id=case_id).status is CaseStatus.ENFORCEMENT_DUE


def test_overturned_appeal_restores_the_app(sqlite_engine: Engine) -> None:
    case_id = _appealed(sqlite_engine)
    run = Background(
        lambda: review_appeal(case_id, timeout_hours=0.05, poll_seconds=1, return_state=True)
    )
    _wait_until_paused(case_id, "review-appeal")

    assert resume_waiting(case_id, "review-appeal", "overturn", "limit added", "lead-bob")

    assert run.join().name == "Overturn"
    with session_scope(sqlite_engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert (case.status, case.outcome) == (CaseStatus.CLOSED, "overturned")
        assert session.get(App, case.apps[0].id).status is AppStatus.ACTIVE  # type: ignore[union-attr]


def test_nothing_to_decide_finishes_without_waiting(sqlite_engine: Engine) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.MEDIUM)  # enforced, never appealed

    state = review_appeal(case_id, timeout_hours=1, return_state=True)

    assert state.name == "AlreadyDecided"


def test_expired_suspended_run_is_failed_and_escalated() -> None:
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            review_appeal,
            parameters={"case_id": 77},
            tags=["review-appeal", "case:77"],
            state=Suspended(timeout_seconds=1, pause_key="decision"),
        )
    time.sleep(1.5)

    assert 77 in expire_waiting()

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and (state.name, state.is_failed()) == ("TimedOut", True)
    assert _latest_artifact("case-77-escalation") is not None
