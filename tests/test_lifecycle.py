"""The lifecycle end to end through the domain services, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import ActionStatus, AppStatus, CaseStatus, OutboxStatus, Severity
from cases.core.errors import GuardFailed, TransitionNotAllowed
from cases.core.models import App, OutboxMessage, PlatformAction
from cases.enforcement import appeals
from cases.lifecycle import escalation, history, operations, service, sweeper
from tests import factories as f
from tests.factories import T0, days


def _status(engine: Engine, case_id: int) -> CaseStatus:
    with session_scope(engine) as session:
        return service.get_or_raise(session, case_id=case_id).status


def _templates(engine: Engine, case_id: int) -> list[str]:
    with session_scope(engine) as session:
        query = select(OutboxMessage.template).where(OutboxMessage.case_id == case_id)
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def _confirmed_case(engine: Engine, **kwargs: object) -> int:
    with session_scope(engine) as session:
        case = f.open_case(session, **kwargs)  # type: ignore[arg-type]
        operations.confirm(
            session, case_id=case.id, actor="lead-ann", reason="spam confirmed", now=T0
        )
        return case.id


def _to_changes_requested(engine: Engine) -> int:
    case_id = _confirmed_case(engine)
    sweeper.advance(engine, now=T0)
    f.deliver_pending(engine, now=T0)
    sweeper.advance(engine, now=T0 + days(15))  # response window (14 days) over
    f.deliver_pending(engine, now=T0 + days(15))
    return case_id


def test_deadline_missed_leads_to_revoked_token_then_overturned_appeal(engine: Engine) -> None:
    case_id = _to_changes_requested(engine)
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert case.status is CaseStatus.CHANGES_REQUESTED
        assert case.deadline == T0 + days(15) + days(30)
        assert case.next_reminder_at == case.deadline - days(7)
        app_id = case.apps[0].id

    sweeper.advance(engine, now=T0 + days(39))  # 6 days before: the 7-day reminder
    assert _templates(engine, case_id).count("deadline_reminder") == 1
    sweeper.advance(engine, now=T0 + days(39))
    assert _templates(engine, case_id).count("deadline_reminder") == 1

    reports = sweeper.advance(engine, now=T0 + days(46))
    assert {r.step: r.done for r in reports}["enforce"] == [case_id]
    with session_scope(engine) as session:
        assert session.get(App, app_id).status is AppStatus.TOKEN_REVOKED  # type: ignore[union-attr]
    assert _templates(engine, case_id)[-1] == "token_revoked"

    f.deliver_pending(engine, now=T0 + days(46))
    with session_scope(engine) as session:
        appeals.submit_appeal(
            session, case_id=case_id, actor="d-dev", statement="we fixed it", now=T0 + days(50)
        )
    with session_scope(engine) as session:
        appeals.decide_appeal(
            session,
            case_id=case_id,
            reviewer="lead-bob",
            overturn=True,
            reason="the posting limit is in place",
            now=T0 + days(52),
        )
    assert sweeper.run_step(engine, "enforce", now=T0 + days(52)).done == [case_id]  # lifted
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert (case.status, case.outcome) == (CaseStatus.CLOSED, "overturned")
        assert session.get(App, app_id).status is AppStatus.ACTIVE  # type: ignore[union-attr]
        actions = session.scalars(select(PlatformAction)).all()
        assert {a.status for a in actions} == {ActionStatus.REVERSED}
        replayed = history.replay(service.events(session, case_id=case_id))
        assert replayed == history.Snapshot.of(case)
    assert _templates(engine, case_id)[-2:] == ["appeal_received", "appeal_overturned"]
    with session_scope(engine) as session:
        overturned = session.scalars(
            select(OutboxMessage.text_body).where(
                OutboxMessage.case_id == case_id, OutboxMessage.template == "appeal_overturned"
            )
        ).one()
    assert "can be authorised again" in overturned  # the restored token is named


def test_compliance_reported_and_verified_resolves(engine: Engine) -> None:
    case_id = _to_changes_requested(engine)
    with session_scope(engine) as session:
        operations.report_compliance(
            session, case_id=case_id, actor="dev", statement="rate limit added", now=T0 + days(20)
        )
    sweeper.advance(engine, now=T0 + days(90))  # deadline passes while the lead verifies
    assert _status(engine, case_id) is CaseStatus.COMPLIANCE_REPORTED
    with session_scope(engine) as session:
        operations.resolve(
            session, case_id=case_id, actor="lead-ann", reason="verified", now=T0 + days(91)
        )
    assert _status(engine, case_id) is CaseStatus.RESOLVED
    assert _templates(engine, case_id)[-1] == "case_resolved"


def test_deadline_waits_for_delivery(engine: Engine) -> None:
    case_id = _confirmed_case(engine)
    sweeper.advance(engine, now=T0)
    sweeper.advance(engine, now=T0 + days(400))  # never delivered: nothing times out
    assert _status(engine, case_id) is CaseStatus.OUTREACH_SENT


def test_enforcement_needs_approval_for_bans_and_appeal_needs_another_lead(engine: Engine) -> None:
    with session_scope(engine) as session:
        case = f.open_case(session, severity=Severity.HIGH)
        operations.confirm(session, case_id=case.id, actor="lead-ann", reason="ok", now=T0)
        case_id = case.id
    sweeper.advance(engine, now=T0)
    f.deliver_pending(engine, now=T0)
    sweeper.advance(engine, now=T0 + days(15))
    f.deliver_pending(engine, now=T0 + days(15))
    sweeper.advance(engine, now=T0 + days(46))
    assert _status(engine, case_id) is CaseStatus.ENFORCEMENT_DUE  # ban waits for a lead
    with session_scope(engine) as session:
        escalation.approve_enforcement(
            session, case_id=case_id, actor="lead-ann", reason="repeat spammer", now=T0 + days(46)
        )
    sweeper.advance(engine, now=T0 + days(46))
    assert _status(engine, case_id) is CaseStatus.ENFORCED
    f.deliver_pending(engine, now=T0 + days(46))
    with session_scope(engine) as session:
        appeals.submit_appeal(
            session, case_id=case_id, actor="dev", statement="x", now=T0 + days(47)
        )
    with session_scope(engine) as session, pytest.raises(GuardFailed, match="another lead"):
        appeals.decide_appeal(
            session,
            case_id=case_id,
            reviewer="lead-ann",
            overturn=False,
            reason="no",
            now=T0 + days(48),
        )


def test_urgent_enforcement_needs_evidence_and_a_lead(engine: Engine) -> None:
    with session_scope(engine) as session:
        case = f.open_case(session, evidence={})
        operations.confirm(session, case_id=case.id, actor="lead-ann", reason="ok", now=T0)
        with pytest.raises(GuardFailed, match="no recorded evidence"):
            escalation.approve_enforcement(
                session, case_id=case.id, actor="lead-ann", reason="urgent", now=T0
            )
        service.add_evidence(
            session, case_id=case.id, note="200 spam DMs", actor="lead-ann", now=T0
        )
        escalation.approve_enforcement(
            session, case_id=case.id, actor="lead-ann", reason="active spam wave", now=T0
        )
        case_id = case.id
    reports = sweeper.advance(engine, now=T0)
    assert {r.step: r.done for r in reports}["enforce"] == [case_id]


def test_illegal_moves_change_nothing(engine: Engine) -> None:
    with session_scope(engine) as session:
        case_id = f.open_case(session).id
    with session_scope(engine) as session, pytest.raises(TransitionNotAllowed, match="opened"):
        operations.resolve(session, case_id=case_id, actor="lead-ann", reason="x", now=T0)
    with session_scope(engine) as session:
        assert len(service.events(session, case_id=case_id)) == 1


def test_one_extension_only(engine: Engine) -> None:
    case_id = _to_changes_requested(engine)
    with session_scope(engine) as session:
        operations.extend(
            session, case_id=case_id, actor="lead-ann", reason="holiday", now=T0 + days(20)
        )
        assert service.get_or_raise(session, case_id=case_id).deadline == T0 + days(59)
    with session_scope(engine) as session, pytest.raises(GuardFailed, match="one extension"):
        operations.extend(
            session, case_id=case_id, actor="lead-ann", reason="again", now=T0 + days(21)
        )
    assert _templates(engine, case_id)[-1] == "extension_granted"


def test_pending_mail_is_not_marked_delivered_twice(engine: Engine) -> None:
    case_id = _confirmed_case(engine)
    sweeper.advance(engine, now=T0)
    with session_scope(engine) as session:
        assert (
            session.scalar(select(OutboxMessage.status).where(OutboxMessage.case_id == case_id))
            is OutboxStatus.PENDING
        )
