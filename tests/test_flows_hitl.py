"""Decision flows: pause for a typed input, resume from the UI or the CLI, and time out."""

from __future__ import annotations

import json
import time

import pytest
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import State
from prefect.client.schemas.sorting import ArtifactSort
from prefect.states import Suspended
from sqlalchemy import Engine, func, select

from cases.core.db import session_scope
from cases.core.enums import AppStatus, CaseStatus, Severity
from cases.core.models import App, CaseEvent, Enforcement
from cases.enforcement import appeals
from cases.lifecycle import escalation, extensions, operations, service, sweeper
from cases.lifecycle.states import Op
from flows.approve_enforcement import approve_enforcement
from flows.extension_request import extension_request
from flows.hitl import Kind, expire_waiting, resume_waiting, waiting_runs
from flows.review_appeal import review_appeal
from tests import factories as f
from tests.factories import T0, days
from tests.prefect_fixtures import (
    Background,
    prefect_harness,  # noqa: F401  (the session fixture)
)

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
DECIDED = (T0 + days(52)).isoformat()  # after every step the helpers below take


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


def _waiting(flow: Flow[..., State], case_id: int) -> Background:
    """The decision flow started on a thread for ``case_id``, once it waits for its form."""
    run = Background(
        lambda: flow(case_id, timeout_hours=0.05, poll_seconds=1, now=DECIDED, return_state=True)
    )
    _wait_until_paused(case_id, flow.name)  # type: ignore[arg-type]  (a decision flow's name)
    return run


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
    run = _waiting(approve_enforcement, case_id)

    assert resume_waiting(case_id, "approve-enforcement", "approve", "ban fits", "lead-bob")

    state = run.join()
    assert (state.name, state.is_completed()) == ("Approved", True)
    with session_scope(sqlite_engine) as session:
        decision = session.scalars(select(Enforcement).where(Enforcement.case_id == case_id)).one()
        assert decision.approved_by == "lead-bob"
        event = session.scalars(
            select(CaseEvent).where(
                CaseEvent.case_id == case_id, CaseEvent.kind == Op.APPROVE_ENFORCEMENT
            )
        ).one()
    # the event says the reviewer's name came from the form of this flow run, not the CLI
    assert (event.actor, event.data["origin"]["channel"]) == ("lead-bob", "prefect-ui")
    assert event.data["origin"]["flow_run_id"] == str(state.state_details.flow_run_id)


def test_decision_recorded_by_the_cli_is_not_recorded_twice(sqlite_engine: Engine) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)
    run = _waiting(approve_enforcement, case_id)
    with session_scope(sqlite_engine) as session:  # what `caseward cases approve-enforcement` does
        escalation.approve_enforcement(
            session, case_id=case_id, actor="lead-cy", reason="urgent", now=T0 + days(47)
        )

    assert resume_waiting(case_id, "approve-enforcement", "approve", "urgent", "lead-cy")

    assert run.join().name == "AlreadyDecided"
    assert _count(sqlite_engine, case_id, Op.APPROVE_ENFORCEMENT) == 1


def test_no_decision_in_time_escalates(sqlite_engine: Engine) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)

    state = approve_enforcement(
        case_id, timeout_hours=2 / 3600, poll_seconds=1, now=DECIDED, return_state=True
    )

    assert (state.name, state.is_failed()) == ("TimedOut", True)
    assert "within" in (state.message or "")
    page = _latest_artifact(f"case-{case_id}-escalation")
    assert page is not None and "approve-enforcement" in page
    with session_scope(sqlite_engine) as session:
        assert service.get_or_raise(session, case_id=case_id).status is CaseStatus.ENFORCEMENT_DUE


def test_overturned_appeal_restores_the_app(sqlite_engine: Engine) -> None:
    case_id = _appealed(sqlite_engine)
    run = _waiting(review_appeal, case_id)

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


def _form(run_id: object, key: str) -> str | None:
    """What the Prefect UI shows above a paused run's form (its saved description)."""
    from prefect.input.run_input import read_flow_run_input

    value = read_flow_run_input(f"paused-{key}-description", flow_run_id=run_id)
    return None if value is None else str(value)


def _leads(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    from cases.core.settings import get_settings

    monkeypatch.setenv("CASEWARD_LEADS", json.dumps(list(names)))
    get_settings.cache_clear()


def test_the_form_refuses_a_reviewer_who_is_not_a_lead_and_keeps_waiting(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _leads(monkeypatch, "lead-ann", "lead-bob")
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)
    run = _waiting(approve_enforcement, case_id)

    with pytest.raises(RuntimeError, match="mallory"):  # the server refuses the form
        resume_waiting(case_id, "approve-enforcement", "approve", "ban fits", "mallory")
    assert waiting_runs(case_id, "approve-enforcement"), "the run keeps waiting"

    assert resume_waiting(case_id, "approve-enforcement", "approve", "ban fits", "lead-bob")
    assert run.join().name == "Approved"


def test_a_decision_the_lifecycle_refuses_is_asked_again(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _leads(monkeypatch, "lead-ann", "lead-cy")
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)
    run = _waiting(approve_enforcement, case_id)
    _leads(monkeypatch, "lead-ann")  # lead-cy leaves the team while the form is open

    assert resume_waiting(case_id, "approve-enforcement", "approve", "ban fits", "lead-cy")
    deadline = time.monotonic() + 30
    while _count(sqlite_engine, case_id, Op.APPROVE_ENFORCEMENT) == 0:
        runs = waiting_runs(case_id, "approve-enforcement")
        if runs and _form(runs[0], "decision-2"):  # refused, and a new form is waiting
            break
        assert time.monotonic() < deadline, "the refused decision was not asked again"
        time.sleep(0.3)
    assert _count(sqlite_engine, case_id, Op.APPROVE_ENFORCEMENT) == 0

    assert resume_waiting(case_id, "approve-enforcement", "approve", "ban fits", "lead-ann")
    assert run.join().name == "Approved"
    with session_scope(sqlite_engine) as session:
        decision = session.scalars(select(Enforcement).where(Enforcement.case_id == case_id)).one()
        assert decision.approved_by == "lead-ann"


def test_the_form_shows_the_case_the_lead_decides(sqlite_engine: Engine) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)
    run = _waiting(approve_enforcement, case_id)
    form = _form(waiting_runs(case_id, "approve-enforcement")[0], "decision-1")

    assert form is not None
    assert f"Case {case_id}: approve or decline" in form
    assert "Spam reports per 1000 posts | 7\\.50" in form  # evidence, not raw JSON
    assert "ban app" in form and "Impact if applied" in form
    assert f"/artifacts/key/case-{case_id}" in form
    resume_waiting(case_id, "approve-enforcement", "decline", "not this time", "lead-bob")
    assert run.join().name == "Declined"


def test_the_appeal_form_shows_the_statement_and_bars_the_approver(
    sqlite_engine: Engine,
) -> None:
    case_id = _enforced_or_due(sqlite_engine, Severity.HIGH)
    with session_scope(sqlite_engine) as session:
        escalation.approve_enforcement(
            session, case_id=case_id, actor="lead-ann", reason="ban", now=T0 + days(46)
        )
    sweeper.advance(sqlite_engine, now=T0 + days(47))
    f.deliver_pending(sqlite_engine, now=T0 + days(47))
    with session_scope(sqlite_engine) as session:
        appeals.submit_appeal(
            session,
            case_id=case_id,
            actor="d-dev",
            statement="We removed the bot.\n![x](https://evil.example/track.png)",
            now=T0 + days(50),
        )
    run = _waiting(review_appeal, case_id)
    form = _form(waiting_runs(case_id, "review-appeal")[0], "decision-1")

    assert form is not None and "> We removed the bot\\." in form
    assert "![x](" not in form and "\\!\\[x\\]\\(" in form  # no image fetched from the developer
    assert "lead\\-ann approved this enforcement and cannot decide its appeal" in form
    with pytest.raises(RuntimeError, match="lead-ann"):
        resume_waiting(case_id, "review-appeal", "uphold", "fits", "lead-ann")
    assert resume_waiting(case_id, "review-appeal", "uphold", "fits", "lead-bob")
    assert run.join().name == "Uphold"


def _asked_for_time(engine: Engine) -> int:
    """A case whose developer asked for more time before the change deadline (day 45)."""
    with session_scope(engine) as session:
        case = f.open_case(session)
        operations.confirm(session, case_id=case.id, actor="lead-ann", reason="spam", now=T0)
        case_id = case.id
    for at in (T0, T0 + days(15)):
        sweeper.advance(engine, now=at)
        f.deliver_pending(engine, now=at)
    with session_scope(engine) as session:
        extensions.request_extension(
            session,
            case_id=case_id,
            actor="developer:d-1",
            statement="We are <b>merging</b> the apps",
            now=T0 + days(40),
        )
    return case_id


def test_a_request_for_more_time_is_granted_in_the_ui(sqlite_engine: Engine) -> None:
    case_id = _asked_for_time(sqlite_engine)
    with session_scope(sqlite_engine) as session:
        before = service.get_or_raise(session, case_id=case_id).deadline
    assert before is not None
    run = _waiting(extension_request, case_id)

    assert resume_waiting(case_id, "extension-request", "grant", "progress shown", "lead-bob")

    assert run.join().name == "Granted"
    with session_scope(sqlite_engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert case.extension_granted and case.deadline == before + days(14)
        assert not extensions.awaiting_decision(session, case_id=case_id)
    assert _count(sqlite_engine, case_id, Op.EXTEND) == 1


def test_a_request_for_more_time_declined_in_the_ui_lets_the_case_escalate(
    sqlite_engine: Engine,
) -> None:
    case_id = _asked_for_time(sqlite_engine)
    sweeper.advance(sqlite_engine, now=T0 + days(46))  # past the deadline: held
    with session_scope(sqlite_engine) as session:
        assert service.get_or_raise(session, case_id=case_id).status is CaseStatus.CHANGES_REQUESTED
    run = _waiting(extension_request, case_id)
    form = _form(waiting_runs(case_id, "extension-request")[0], "decision-1")
    assert form is not None and f"Case {case_id}: grant or decline more time" in form
    assert "> We are \\<b\\>merging\\</b\\> the apps" in form  # the request, escaped

    assert resume_waiting(case_id, "extension-request", "decline", "no progress", "lead-bob")

    assert run.join().name == "Declined"
    assert _count(sqlite_engine, case_id, Op.DECLINE_EXTENSION) == 1
    sweeper.advance(sqlite_engine, now=T0 + days(53))
    with session_scope(sqlite_engine) as session:
        assert service.get_or_raise(session, case_id=case_id).status is not (
            CaseStatus.CHANGES_REQUESTED
        )
