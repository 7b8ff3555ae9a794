"""The leads' work queue: what waits for a lead with its age and SLA target, overdue first;
each breach recorded once and announced once as the Prefect event ``caseward.sla.breached``;
the daily report's figures of the leads' work."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from prefect.events import Event
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker
from sqlalchemy import Engine, select, update

from cases.core.db import session_scope
from cases.core.enums import Severity
from cases.core.models import SlaBreach
from cases.leads import metrics, sla
from cases.leads.queue import work_queue
from cases.lifecycle import notices, operations
from caseward.cli.main import main
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import T0, TIMES, days
from tests.prefect_fixtures import prefect_harness  # noqa: F401  (the session fixture)

NOW = T0 + days(53)


@pytest.fixture
def waiting(engine: Engine) -> dict[str, int]:
    """One case of each kind waiting for a lead, and one waiting for nobody."""
    cases = {
        "triage": f.case_in(engine, "opened"),
        "check-compliance": f.case_in(engine, "compliance_reported"),
        "approve-enforcement": f.case_in(engine, "enforcement_due", severity=Severity.HIGH),
        "review-appeal": f.case_in(engine, "appealed"),
        "unblock-delivery": f.case_in(engine, "outreach_sent"),
    }
    f.case_in(engine, "changes_requested")  # waits for the developer, not for a lead
    with session_scope(engine) as session:
        notices.delivery_failed(
            session,
            case_id=cases["unblock-delivery"],
            outbox_id=1,
            error="550 mailbox unavailable",
            now=T0 + days(52.5),
        )
    return cases


def queue(now: datetime = NOW, **kwargs: str) -> list[tuple[str, int, bool]]:
    from cases.core.db import get_engine

    with session_scope(get_engine()) as session:
        return [(i.kind, i.case_id, i.overdue) for i in work_queue(session, now=now, **kwargs)]


def test_the_queue_lists_what_waits_for_a_lead_overdue_first(waiting: dict[str, int]) -> None:
    assert queue() == [
        ("triage", waiting["triage"], True),  # opened on day 0, due on day 2
        ("check-compliance", waiting["check-compliance"], True),  # day 20, due day 23
        ("approve-enforcement", waiting["approve-enforcement"], True),  # day 46, due day 48
        ("unblock-delivery", waiting["unblock-delivery"], False),  # day 52.5, due day 53.5
        ("review-appeal", waiting["review-appeal"], False),  # day 50, due day 57
    ]


def test_sla_targets_are_configured_per_kind(
    waiting: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEWARD_SLA__APPEAL_DAYS", "2")
    monkeypatch.setenv("CASEWARD_SLA__DELIVERY_DAYS", "0.25")
    reset_caches()
    overdue = {kind for kind, _, late in queue() if late}
    assert {"review-appeal", "unblock-delivery"} <= overdue


def test_the_queue_command_mine_kind_and_json(
    engine: Engine, waiting: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    with session_scope(engine) as session:
        operations.assign(
            session, case_id=waiting["review-appeal"], actor="lead-ann", assignee="lead-bob",
            now=NOW - days(1),
        )  # fmt: skip
    argv = ["--now", NOW.isoformat(), "--actor", "lead-bob", "queue"]
    assert main([*argv, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["total"], shown["overdue"]) == (5, 3)
    assert [i["kind"] for i in shown["items"]][:3] == [
        "triage",
        "check-compliance",
        "approve-enforcement",
    ]
    assert main([*argv, "--mine", "--json"]) == 0
    mine = json.loads(capsys.readouterr().out)
    assert [(i["case_id"], i["assignee"]) for i in mine["items"]] == [
        (waiting["review-appeal"], "lead-bob")
    ]
    assert main([*argv, "--kind", "triage", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_kind"] == {"triage": 1}

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "5 item(s) wait for a lead, 3 overdue" in out
    assert "overdue 51d  triage" in out
    assert "caseward appeal decide ID --uphold|--overturn" in out


def test_a_breach_is_recorded_once(engine: Engine, waiting: dict[str, int]) -> None:
    with session_scope(engine) as session:
        assert sla.record_breaches(session, now=NOW) == 3
    with session_scope(engine) as session:
        assert sla.record_breaches(session, now=NOW + days(1)) == 1  # the delivery, now late
        assert sla.record_breaches(session, now=NOW + days(1)) == 0
        kinds = session.scalars(select(SlaBreach.kind).order_by(SlaBreach.id))
        assert list(kinds) == [
            "triage",
            "check-compliance",
            "approve-enforcement",
            "unblock-delivery",
        ]


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[Event]]]:
    """The Prefect events emitted in the test, by name (Prefect's recording client)."""
    AssertingEventsClient.reset()
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)

    def named(name: str) -> list[Event]:
        worker.drain()
        return [e for c in AssertingEventsClient.all for e in c.events if e.event == name]

    yield named
    worker.drain()
    AssertingEventsClient.reset()


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_advance_cases_announces_each_breach_once(
    sqlite_engine: Engine, emitted: Callable[[str], list[Event]]
) -> None:
    from flows import _sla
    from flows.advance import advance_cases

    late = f.case_in(sqlite_engine, "opened")  # opened at T0: triage due on day 2
    state = advance_cases(now=(T0 + days(3)).isoformat(), return_state=True)
    assert state.is_completed(), state.message

    events = emitted("caseward.sla.breached")
    assert len(events) == 1
    event = events[0]
    assert event.resource.id == f"caseward.case.{late}"
    assert event.resource["caseward.sla.kind"] == "triage"
    assert event.payload["waiting_since"] == T0.isoformat()
    assert event.payload["target_hours"] == 48
    with session_scope(sqlite_engine) as session:
        breach = session.scalars(select(SlaBreach)).one()
        assert breach.announced_at == T0 + days(3)
    assert event.id == _sla.breach_uuid(breach.id)

    advance_cases(now=(T0 + days(4)).isoformat())  # still late: the same breach
    assert len(emitted("caseward.sla.breached")) == 1

    # a crash after emitting, before marking: the repeat carries the same event id
    with session_scope(sqlite_engine) as session:
        session.execute(update(SlaBreach).values(announced_at=None))
    _sla.announce((T0 + days(4)).isoformat())
    ids = {e.id for e in emitted("caseward.sla.breached")}
    assert ids == {event.id}


def test_the_report_measures_the_leads_work(engine: Engine, waiting: dict[str, int]) -> None:
    """Triage times (a rule's apart), appeal decision times, breaches, overturn rate per
    policy and strikes issued, over the last 30 days."""
    at = TIMES["decide"] + days(1)
    fast = f.case_in(engine, "opened")
    with session_scope(engine) as session:
        operations.confirm(session, case_id=fast, actor="lead-ann", reason="ok", now=T0 + days(1))
        ruled = f.open_case(session, now=T0 + days(1))
        operations.confirm(
            session, case_id=ruled.id, actor="rule:spam-flood", reason="rule", now=T0 + days(1)
        )
    f.case_in(engine, "closed")  # appealed on day 50, upheld on day 52
    with session_scope(engine) as session:
        sla.record_breaches(session, now=at)
        figures = metrics.lead_figures(session, now=at)
    assert figures["time_to_triage"]["count"] == 0  # every triage is older than 30 days
    figures_day2 = _figures(engine, T0 + days(2))
    triage = figures_day2["time_to_triage"]
    assert triage["by_rules"] == 1  # counted apart from the leads'
    assert triage["p90_hours"] == 24.0  # `fast`: opened at T0, confirmed a day later
    assert triage["p50_hours"] == 0.0  # the others were confirmed when opened
    appeal = figures["time_to_appeal_decision"]
    assert (appeal["count"], appeal["p50_hours"], appeal["p90_hours"]) == (1, 48.0, 48.0)
    assert figures["sla_breaches"]["recorded"] == {
        "approve-enforcement": 1,
        "check-compliance": 1,
        "triage": 1,
    }
    assert figures["sla_breaches"]["overdue_now"] == figures["sla_breaches"]["recorded"]
    assert figures["overturn_by_policy"] == [
        {"policy": "spam", "decided": 1, "overturned": 0, "rate": 0.0}
    ]
    # enforced on day 46: the appealed case and the closed one, one developer each
    assert figures["strikes_issued"] == {"strikes": 2, "developers": 2, "repeat_offenders": 0}


def _figures(engine: Engine, now: datetime) -> dict[str, object]:
    with session_scope(engine) as session:
        return metrics.lead_figures(session, now=now)


def test_percentiles_are_nearest_rank() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert metrics.percentile(values, 0.5) == 3.0
    assert metrics.percentile(values, 0.9) == 5.0
    assert metrics.percentile([], 0.5) is None
