"""A later snapshot meets open cases: new parties get their own case and full deadlines, and
refreshed evidence goes beside what leads recorded, never over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from cases.core.db import session_scope
from cases.core.enums import AppStatus, CaseStatus, FindingAction, Policy, Severity
from cases.core.errors import GuardFailed
from cases.core.models import App, Case, CaseEvent, OutboxMessage
from cases.core.settings import DetectionSettings, get_settings
from cases.detection.finding import Finding
from cases.detection.run import run_detection
from cases.detection.to_cases import sync_findings
from cases.lifecycle import operations, service, sweeper
from tests import factories as f
from tests.detection_fixtures import SnapshotBuilder
from tests.factories import T0, days

S = CaseStatus
DETECTION = DetectionSettings()


def _detect(
    engine: Engine, snapshot: SnapshotBuilder, folder: Path, *, now: object
) -> list[Finding]:
    with session_scope(engine) as session:
        report = run_detection(
            session,
            snapshot.write(folder),
            settings=get_settings().detection,
            actor="detector",
            now=now,  # type: ignore[arg-type]
        )
    return report.findings


def _keys_platform(accounts: int) -> SnapshotBuilder:
    """``accounts`` unlinked accounts, each registering the same service (user_supplied_keys)."""
    b = SnapshotBuilder()
    for i in range(accounts):
        b.developer(f"d{i}").app(
            f"a{i}", f"d{i}", f"My Social {i}", callbacks="https://socialsuite.io/oauth/cb"
        )
    return b


def test_an_account_found_after_the_change_request_gets_its_own_case_and_deadlines(
    engine: Engine, tmp_path: Path
) -> None:
    [first] = _detect(engine, _keys_platform(5), tmp_path / "s1", now=T0)
    case_id = first.case_id
    assert case_id is not None
    with session_scope(engine) as session:
        operations.confirm(session, case_id=case_id, actor="lead-ann", reason="ok", now=T0)
    for day in (0, 15):  # outreach, then the change request once the response window ends
        sweeper.advance(engine, now=T0 + days(day))
        f.deliver_pending(engine, now=T0 + days(day))

    # a sixth account registers the same service while the first five have their deadline
    [later] = _detect(engine, _keys_platform(6), tmp_path / "s2", now=T0 + days(20))
    assert later.action is FindingAction.OPENED and later.case_id != case_id
    assert _members(engine, later.case_id) == (["a5"], ["d5"])  # type: ignore[arg-type]
    with session_scope(engine) as session:
        first_case = service.get_or_raise(session, case_id=case_id)
        assert [d.id for d in first_case.developers] == [f"d{i}" for i in range(5)]
        linked = service.get_or_raise(session, case_id=later.case_id)  # type: ignore[arg-type]
        assert linked.status is S.OPENED  # a lead confirms it, then it has its own outreach
        opening = service.events(session, case_id=linked.id)[0]
        assert opening.data["linked_case_id"] == case_id
        note = service.events(session, case_id=case_id)[-1]
        assert note.kind == "evidence_refreshed" and note.data["linked_case_id"] == linked.id

    # the first case's deadline passes: only its own five developers are enforced against
    sweeper.advance(engine, now=T0 + days(46))
    with session_scope(engine) as session:
        assert service.get_or_raise(session, case_id=case_id).status is S.ENFORCED
        assert session.get_one(App, "a5").status is AppStatus.ACTIVE
        to_d5 = session.scalars(
            select(OutboxMessage.template).where(OutboxMessage.developer_id == "d5")
        ).all()
    assert to_d5 == []  # nothing yet: its case waits for a lead, then starts from outreach

    # running detection again on the same snapshot changes nothing
    with session_scope(engine) as session:
        events = len(session.scalars(select(CaseEvent.id)).all())
    [again] = _detect(engine, _keys_platform(6), tmp_path / "s3", now=T0 + days(47))
    assert again.action is FindingAction.UNCHANGED
    with session_scope(engine) as session:
        assert len(session.scalars(select(CaseEvent.id)).all()) == events


def _finding(app_ids: list[str], developer_ids: list[str], **evidence: object) -> Finding:
    return Finding(
        policy=Policy.SPAM,
        app_ids=app_ids,
        developer_ids=developer_ids,
        score=9.0,
        severity=Severity.MEDIUM,
        reason="spam reports",
        evidence={"spam_reports_per_1000_posts": 9.0, **evidence},
    )


def _members(engine: Engine, case_id: int) -> tuple[list[str], list[str]]:
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        return [a.id for a in case.apps], [d.id for d in case.developers]


@pytest.mark.parametrize(
    "status, joins",
    [
        (S.OPENED, True),
        (S.CONFIRMED, True),
        (S.OUTREACH_SENT, False),
        (S.CHANGES_REQUESTED, False),
        (S.ENFORCEMENT_DUE, False),
        (S.ENFORCED, False),
        (S.APPEALED, False),
    ],
)
def test_new_apps_join_a_case_only_before_its_outreach(
    engine: Engine, status: CaseStatus, joins: bool
) -> None:
    case_id = f.case_in(engine, status)
    apps, developers = _members(engine, case_id)
    with session_scope(engine) as session:
        newcomer = f.developer(session)
        new_app = f.app(session, owner=newcomer)
        finding = _finding([*apps, new_app.id], [*developers, newcomer.id])
        [synced] = sync_findings(
            session, [finding], settings=DETECTION, actor="detector", now=T0 + days(60)
        )
    if joins:
        assert (synced.case_id, synced.action) == (case_id, FindingAction.REFRESHED)
        assert _members(engine, case_id) == (
            sorted([*apps, new_app.id]),
            sorted([*developers, newcomer.id]),
        )
    else:
        assert synced.case_id != case_id and synced.action is FindingAction.OPENED
        assert _members(engine, case_id) == (apps, developers)
        assert _members(engine, synced.case_id) == ([new_app.id], [newcomer.id])  # type: ignore[arg-type]


def test_members_cannot_be_added_after_outreach_by_hand_either(engine: Engine) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED)
    with session_scope(engine) as session:
        newcomer = f.developer(session)
        app_id = f.app(session, owner=newcomer).id
    with pytest.raises(GuardFailed, match="after its outreach"), session_scope(engine) as session:
        service.refresh_evidence(
            session,
            case_id=case_id,
            evidence={"x": 1},
            score=1.0,
            app_ids=[app_id],
            developer_ids=[newcomer.id],
            actor="detector",
            now=T0 + days(30),
        )


def test_refreshed_evidence_keeps_the_leads_notes(engine: Engine) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED)
    apps, developers = _members(engine, case_id)
    with session_scope(engine) as session:
        service.add_evidence(
            session, case_id=case_id, note="confirmed by hand", actor="lead-ann", now=T0 + days(20)
        )
    finding = _finding(apps, developers, flagged_reports=40)
    with session_scope(engine) as session:
        [synced] = sync_findings(
            session, [finding], settings=DETECTION, actor="detector", now=T0 + days(21)
        )
    assert synced.action is FindingAction.REFRESHED
    with session_scope(engine) as session:
        evidence = service.get_or_raise(session, case_id=case_id).evidence
    assert evidence["flagged_reports"] == 40  # detection's fields are refreshed
    assert [n["note"] for n in evidence["notes"]] == ["confirmed by hand"]  # the note stays
    with session_scope(engine) as session:  # the same finding again: nothing to write
        [again] = sync_findings(
            session, [finding], settings=DETECTION, actor="detector", now=T0 + days(22)
        )
    assert again.action is FindingAction.UNCHANGED


def _after_dismissal(
    engine: Engine, finding: Finding, *, day: int, settings: DetectionSettings = DETECTION
) -> tuple[Finding, int]:
    """``finding`` synced ``day`` days after its case was dismissed; with the cases now held."""
    with session_scope(engine) as session:
        [synced] = sync_findings(
            session, [finding], settings=settings, actor="detector", now=T0 + days(day)
        )
        return synced, session.scalar(select(func.count(Case.id))) or 0


@pytest.mark.parametrize(
    "change, day, settings, opens",
    [
        ("same finding", 30, DETECTION, False),
        ("score up 40%", 30, DETECTION, False),
        ("score up 60%", 30, DETECTION, True),
        ("a new account and app", 30, DETECTION, True),
        ("same finding", 181, DETECTION, True),  # the dismissal is forgotten after 180 days
        ("same finding", 1, DetectionSettings(dismissal_memory_days=0), True),
    ],
)
def test_a_dismissed_finding_does_not_come_back_unless_it_grew(
    engine: Engine, change: str, day: int, settings: DetectionSettings, opens: bool
) -> None:
    case_id = f.case_in(engine, S.DISMISSED)
    with session_scope(engine) as session:
        session.execute(update(Case).where(Case.id == case_id).values(score=10.0))
    apps, developers = _members(engine, case_id)
    finding = _finding(apps, developers).model_copy(
        update={"score": {"score up 40%": 14.0, "score up 60%": 16.0}.get(change, 10.0)}
    )
    if change == "a new account and app":
        with session_scope(engine) as session:
            newcomer = f.developer(session)
            new_app = f.app(session, owner=newcomer).id
        finding = _finding([*apps, new_app], [*developers, newcomer.id])
    synced, cases = _after_dismissal(engine, finding, day=day, settings=settings)
    if opens:
        assert synced.action is FindingAction.OPENED and synced.case_id != case_id
        assert cases == 2
    else:
        assert (synced.action, synced.case_id, cases) == (FindingAction.DISMISSED, case_id, 1)
    with session_scope(engine) as session:  # the dismissed case itself is never touched
        assert service.get_or_raise(session, case_id=case_id).status is S.DISMISSED
