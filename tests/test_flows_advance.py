"""advance-cases and deliver-email under the Prefect test harness, with the event relay."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from sqlalchemy import Engine, select, update

from cases.core.db import session_scope
from cases.core.enums import CaseStatus, OutboxStatus
from cases.core.models import Case, OutboxMessage, RelayCursor
from cases.lifecycle import briefs, operations, service
from flows import _markdown
from flows.advance import advance_cases
from flows.deliver import deliver_email
from tests import factories as f
from tests.factories import T0
from tests.prefect_fixtures import prefect_harness  # noqa: F401  (the session fixture)

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _confirmed(engine: Engine, n: int) -> list[int]:
    with session_scope(engine) as session:
        ids = []
        for _ in range(n):
            case = f.open_case(session)
            operations.confirm(session, case_id=case.id, actor="lead-ann", reason="seen", now=T0)
            ids.append(case.id)
        return ids


def _statuses(engine: Engine) -> dict[int, CaseStatus]:
    with session_scope(engine) as session:
        return {i: s for i, s in session.execute(select(Case.id, Case.status))}


def _artifact(key: str) -> str | None:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return str(found[0].data) if found else None


def _cursors(engine: Engine) -> set[int]:
    with session_scope(engine) as session:
        return {c.last_event_id for c in session.scalars(select(RelayCursor))}


def test_advance_sends_outreach_and_the_next_delivery_publishes_it(sqlite_engine: Engine) -> None:
    ids = _confirmed(sqlite_engine, 3)
    before = _cursors(sqlite_engine)

    state = advance_cases(now=T0.isoformat(), return_state=True)

    assert state.is_completed(), state.message
    assert set(_statuses(sqlite_engine).values()) == {CaseStatus.OUTREACH_SENT}
    with session_scope(sqlite_engine) as session:
        templates = session.scalars(select(OutboxMessage.template)).all()
    assert templates == ["outreach"] * 3
    assert _cursors(sqlite_engine) == before  # the sweep itself publishes nothing

    deliver_email(now=T0.isoformat(), limit=0)  # delivers nothing, relays the sweep

    assert _cursors(sqlite_engine) == {9}  # open, confirm, send_outreach per case
    page = _artifact(f"case-{ids[0]}")
    assert page is not None and "outreach sent" in page and "send outreach" in page


def test_one_failing_case_does_not_stop_the_batch(sqlite_engine: Engine) -> None:
    ids = _confirmed(sqlite_engine, 3)
    with session_scope(sqlite_engine) as session:  # a policy the e-mail catalog lacks
        session.execute(update(Case).where(Case.id == ids[1]).values(policy="retired_policy"))

    state = advance_cases(now=T0.isoformat(), return_state=True)

    assert state.is_failed()
    assert f"case {ids[1]}" in (state.message or "")
    statuses = _statuses(sqlite_engine)
    assert statuses[ids[0]] is statuses[ids[2]] is CaseStatus.OUTREACH_SENT
    assert statuses[ids[1]] is CaseStatus.CONFIRMED


def test_deliver_sends_the_outbox_and_starts_deadlines(sqlite_engine: Engine) -> None:
    ids = _confirmed(sqlite_engine, 2)
    advance_cases(now=T0.isoformat())

    state = deliver_email(now=T0.isoformat(), return_state=True)

    assert state.is_completed(), state.message
    assert "2 e-mail(s) sent" in (state.message or "")
    with session_scope(sqlite_engine) as session:
        assert set(session.scalars(select(OutboxMessage.status))) == {OutboxStatus.SENT}
        case = service.get_or_raise(session, case_id=ids[0])
        assert case.deadline is not None
    page = _artifact(f"case-{ids[0]}")
    assert page is not None and "notice delivered" in page


def test_case_markdown_shows_status_and_timeline(sqlite_engine: Engine) -> None:
    ids = _confirmed(sqlite_engine, 1)
    with session_scope(sqlite_engine) as session:
        page = _markdown.render("case", c=briefs.case_brief(session, case_id=ids[0]))
    assert page.startswith(f"# Case {ids[0]}: confirmed")
    assert "· open ·" in page and "· confirm ·" in page
