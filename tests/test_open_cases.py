"""Opening cases in bulk writes exactly what opening them one by one writes.

Detection opens thousands of cases at once through ``service.open_cases``; the lifecycle,
history and replay rely on the rows ``service.open_case`` writes. Both paths run here on
the same database (SQLite and PostgreSQL) and every column of every row is compared.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import CaseStatus, Policy, Severity
from cases.core.errors import NotFound
from cases.core.models import App, Case, CaseEvent, Developer, case_apps, case_developers
from cases.core.schemas import CaseCreate
from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding
from cases.detection.to_cases import sync_findings
from cases.lifecycle import history, operations, service

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def registry(session: Session, developers: int = 4, apps_each: int = 3) -> None:
    for d in range(developers):
        session.add(Developer(id=f"d{d}", handle=f"h{d}", email=f"d{d}@x.org", created_at=NOW))
        for a in range(apps_each):
            session.add(App(id=f"a{d}-{a}", developer_id=f"d{d}", name=f"App {a}", created_at=NOW))
    session.flush()


def cases_in() -> list[CaseCreate]:
    return [
        CaseCreate(
            policy=Policy.DUPLICATE_APPS,
            app_ids=["a0-1", "a0-0", "a1-2"],
            developer_ids=["d1", "d0"],
            reason="  Duplicate apps: 3 apps of 2 linked accounts  ",
            severity=Severity.HIGH,
            evidence={"links": [{"apps": ["a0-0", "a0-1"], "score": 0.93}], "note": "ünïcode"},
            score=0.93,
            source="detection",
        ),
        CaseCreate(
            policy=Policy.SPAM,
            app_ids=["a2-0"],
            developer_ids=["d2"],
            reason="Spam: 7.5 reports per 1,000 posts",
            severity=Severity.LOW,
            score=None,
        ),
        CaseCreate(
            policy=Policy.USER_SUPPLIED_KEYS,
            app_ids=["a3-0", "a3-1", "a2-2"],
            developer_ids=["d3", "d2"],
            reason="One service registered by 5 accounts",
            evidence={},
            score=5.0,
            source="detection",
        ),
    ]


def rows(session: Session, table: Table, case_ids: list[int]) -> list[dict[str, Any]]:
    """Every column of the rows of ``case_ids``; a case id becomes the case's position and
    an event's own id is left out (the two paths number events in the same order)."""
    position = {case_id: n for n, case_id in enumerate(case_ids)}
    column = "id" if table.name == "cases" else "case_id"
    found = []
    for row in session.execute(select(table).where(table.c[column].in_(case_ids))).mappings():
        values = dict(row)
        values[column] = position[values[column]]
        if table.name == "case_events":
            del values["id"]
        found.append(values)
    return sorted(found, key=repr)


def test_bulk_opening_writes_the_rows_one_by_one_writes(engine: Engine) -> None:
    with session_scope(engine) as session:
        registry(session)
        one_by_one = [
            service.open_case(session, case_in=c, actor="detect", now=NOW).id for c in cases_in()
        ]
        bulk = service.open_cases(session, cases_in=cases_in(), actor="detect", now=NOW)
    assert bulk == list(range(one_by_one[-1] + 1, one_by_one[-1] + 1 + len(bulk)))
    with session_scope(engine) as session:
        for table in (Case.__table__, case_apps, case_developers, CaseEvent.__table__):
            assert isinstance(table, Table)
            assert rows(session, table, bulk) == rows(session, table, one_by_one), table.name
        for case_id in bulk:
            case = service.get_or_raise(session, case_id=case_id)
            replayed = history.replay(service.events(session, case_id=case_id))
            assert replayed == history.Snapshot.of(case)


def test_bulk_opened_case_goes_on_through_the_lifecycle(engine: Engine) -> None:
    with session_scope(engine) as session:
        registry(session)
        [case_id, *_] = service.open_cases(session, cases_in=cases_in(), actor="d", now=NOW)
    with session_scope(engine) as session:
        operations.confirm(session, case_id=case_id, actor="lead-ann", reason="clear", now=NOW)
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert case.status is CaseStatus.CONFIRMED and case.event_count == 2
        assert [e.seq for e in service.events(session, case_id=case_id)] == [1, 2]
        assert history.replay(service.events(session, case_id=case_id)) == (
            history.Snapshot.of(case)
        )


def test_unknown_subject_refuses_the_whole_batch(engine: Engine) -> None:
    bad = [*cases_in(), cases_in()[1].model_copy(update={"app_ids": ["a2-0", "nope"]})]
    with pytest.raises(NotFound, match="unknown app nope"), session_scope(engine) as session:
        registry(session)
        service.open_cases(session, cases_in=bad, actor="d", now=NOW)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0


def finding(app_ids: list[str], developer_ids: list[str], evidence: str) -> Finding:
    return Finding(
        policy=Policy.DUPLICATE_APPS,
        app_ids=app_ids,
        developer_ids=developer_ids,
        score=0.9,
        severity=Severity.MEDIUM,
        reason="Duplicate apps",
        evidence={"summary": evidence},
    )


def test_finding_overlapping_a_case_opened_in_the_same_run_attaches_to_it(
    engine: Engine,
) -> None:
    findings = [
        finding(["a0-0", "a0-1"], ["d0"], "first"),
        finding(["a1-0", "a1-1"], ["d1"], "second"),
        finding(["a0-1", "a0-2"], ["d0"], "overlaps the first"),
    ]
    with session_scope(engine) as session:
        registry(session)
        synced = sync_findings(
            session, findings, settings=DetectionSettings(), actor="detect", now=NOW
        )
    assert [(f.case_id, f.action) for f in synced] == [
        (1, "opened"),
        (2, "opened"),
        (1, "refreshed"),
    ]
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=1)
        assert [a.id for a in case.apps] == ["a0-0", "a0-1", "a0-2"]
        assert case.evidence == {"summary": "overlaps the first"}
        assert [e.kind for e in service.events(session, case_id=1)] == [
            "open",
            "evidence_refreshed",
        ]
