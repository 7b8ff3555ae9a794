"""Every transition, every refused transition and every fairness guard, through the services.

Runs on SQLite and PostgreSQL. A refused operation must raise a usage error and leave the
database exactly as it was: no event, no e-mail, no row, the same status.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import AppStatus, CaseStatus, Severity
from cases.core.errors import GuardFailed, InvalidInput, NotFound, TransitionNotAllowed
from cases.core.models import App, Appeal, OutboxMessage
from cases.enforcement import appeals
from cases.enforcement.platform.registry import RegistryAdapter
from cases.lifecycle import escalation, extensions, notices, operations, service
from cases.lifecycle.states import EVENTS, TRANSITIONS, Op
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import T0, TIMES, days
from tests.operations import LATE, OPERATIONS, Operation, S, allowed_by_name, refused

# --- every refused transition ------------------------------------------------------------


@pytest.mark.parametrize("status", list(CaseStatus), ids=str)
def test_operations_not_allowed_in_a_status_change_nothing(
    engine: Engine, status: CaseStatus
) -> None:
    case_id = f.case_in(engine, status)
    assert f.db_state(engine, case_id)["snapshot"].status is status  # type: ignore[attr-defined]
    tried = 0
    for name, (_, operation) in OPERATIONS.items():
        if allowed_by_name(name, status):
            continue
        # at LATE every deadline has passed: the status alone refuses the operation
        error = refused(
            engine,
            case_id,
            lambda s, op=operation: op(s, case_id, LATE),  # type: ignore[misc]
            (TransitionNotAllowed, GuardFailed),
        )
        assert str(error), name
        tried += 1
    assert tried >= 8


# --- every declared transition -----------------------------------------------------------

# (op, source) → how to set the case up (status built by case_in, plus extra steps) and
# when to perform the operation.
TRANSITION_CASES = [
    (op, source) for op, spec in TRANSITIONS.items() for source in sorted(spec.sources)
]


def _operation_for(op: Op) -> Operation:
    if op is Op.APPROVE_URGENT:
        return OPERATIONS["approve_enforcement"][1]
    return next(call for o, call in OPERATIONS.values() if o is op)


def _when(op: Op, source: CaseStatus) -> datetime:
    return {
        Op.REQUEST_CHANGES: TIMES["request"],
        Op.ESCALATE: TIMES["enforce"],
        Op.ENFORCE: TIMES["enforce"],
        Op.SUBMIT_APPEAL: TIMES["appeal"],
        Op.DECLINE_ENFORCEMENT: TIMES["enforce"],
        Op.UPHOLD: TIMES["decide"],
        Op.OVERTURN: TIMES["decide"],
        Op.CLOSE: LATE,
    }.get(op, TIMES["report"] if source is S.COMPLIANCE_REPORTED else T0 + days(16))


@pytest.mark.parametrize(
    ("op", "source"),
    TRANSITION_CASES,
    ids=[f"{o.value}-from-{s.value}" for o, s in TRANSITION_CASES],
)
def test_every_declared_transition_through_the_services(
    engine: Engine, op: Op, source: CaseStatus
) -> None:
    case_id = f.case_in(engine, source)
    before = len(f.db_state(engine, case_id)["events"])  # type: ignore[arg-type]
    with session_scope(engine) as session:
        _operation_for(op)(session, case_id, _when(op, source))
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        events = service.events(session, case_id=case_id)
        assert case.status is TRANSITIONS[op].target
        assert events[-1].kind == op.value
        assert (events[-1].from_status, events[-1].to_status) == (source, case.status)
        assert len(events) == before + 1
        sent = session.scalars(
            select(OutboxMessage.template).where(OutboxMessage.event_id == events[-1].id)
        ).all()
        assert set(TRANSITIONS[op].emails) <= set(sent)


# --- guards -------------------------------------------------------------------------------


def test_blank_reason_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.OPENED)
    refused(
        engine,
        case_id,
        lambda s: operations.confirm(s, case_id=case_id, actor="lead-ann", reason="  ", now=T0),
        InvalidInput,
        "reason is required",
    )


def test_unknown_case_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound, match="no case with id 999"), session_scope(engine) as s:
        operations.confirm(s, case_id=999, actor="lead-ann", reason="r", now=T0)


def test_urgent_enforcement_without_evidence_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.CONFIRMED, evidence={})
    refused(
        engine,
        case_id,
        lambda s: escalation.approve_enforcement(
            s, case_id=case_id, actor="lead-ann", reason="urgent", now=T0
        ),
        GuardFailed,
        "no recorded evidence",
    )


def test_escalation_without_evidence_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED, evidence={})
    refused(
        engine,
        case_id,
        lambda s: escalation.escalate(s, case_id=case_id, now=TIMES["enforce"]),
        GuardFailed,
        "no recorded evidence",
    )


def test_escalation_before_the_deadline_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED)
    refused(
        engine,
        case_id,
        lambda s: escalation.escalate(s, case_id=case_id, now=TIMES["deadline"] - days(1)),
        GuardFailed,
        "deadline has not passed",
    )


def test_undelivered_change_request_never_times_out(engine: Engine) -> None:
    case_id = f.case_in(engine, S.OUTREACH_SENT)
    with session_scope(engine) as session:
        operations.request_changes(session, case_id=case_id, actor="lead-ann", reason="r", now=T0)
    refused(
        engine,
        case_id,
        lambda s: escalation.escalate(s, case_id=case_id, now=LATE),
        GuardFailed,
        "deadline has not passed",
    )


def test_extension_before_delivery_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.OUTREACH_SENT)
    with session_scope(engine) as session:
        operations.request_changes(session, case_id=case_id, actor="lead-ann", reason="r", now=T0)
    refused(
        engine,
        case_id,
        lambda s: operations.extend(s, case_id=case_id, actor="lead-ann", reason="r", now=T0),
        GuardFailed,
        "not been delivered",
    )


def test_second_extension_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED)
    with session_scope(engine) as session:
        operations.extend(
            session, case_id=case_id, actor="lead-ann", reason="r", now=TIMES["report"]
        )
    refused(
        engine,
        case_id,
        lambda s: operations.extend(
            s, case_id=case_id, actor="lead-ann", reason="again", now=TIMES["report"]
        ),
        GuardFailed,
        "one extension",
    )


def test_enforcement_needing_approval_is_refused_until_approved(engine: Engine) -> None:
    case_id = f.case_in(engine, S.ENFORCEMENT_DUE, severity=Severity.HIGH)  # ban_app
    enforce = OPERATIONS["enforce"][1]
    refused(
        engine,
        case_id,
        lambda s: enforce(s, case_id, TIMES["enforce"]),
        GuardFailed,
        "needs a lead's approval",
    )
    with session_scope(engine) as session:
        escalation.approve_enforcement(
            session, case_id=case_id, actor="lead-ann", reason="repeat", now=TIMES["enforce"]
        )
    refused(
        engine,
        case_id,
        lambda s: escalation.approve_enforcement(
            s, case_id=case_id, actor="lead-bob", reason="me too", now=TIMES["enforce"]
        ),
        GuardFailed,
        "already approved by lead-ann",
    )
    with session_scope(engine) as session:
        enforce(session, case_id, TIMES["enforce"])
        app_id = service.get_or_raise(session, case_id=case_id).apps[0].id
    with session_scope(engine) as session:
        assert session.get(App, app_id).status is AppStatus.BANNED  # type: ignore[union-attr]


def test_enforcement_before_the_change_deadline_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.ENFORCEMENT_DUE)
    refused(
        engine,
        case_id,
        lambda s: OPERATIONS["enforce"][1](s, case_id, TIMES["deadline"] - days(1)),
        GuardFailed,
        "change deadline has not passed",
    )


def test_a_rejected_report_is_a_new_change_request_with_its_own_deadline(engine: Engine) -> None:
    """Outreach → compliance reported → rejected: the developer is told, then the clock runs."""
    case_id = f.case_in(engine, S.OUTREACH_SENT)
    with session_scope(engine) as session:
        operations.report_compliance(session, case_id=case_id, actor="dev", statement="x", now=T0)
    with session_scope(engine) as session:
        operations.reject_compliance(
            session, case_id=case_id, actor="lead-ann", reason="still spamming", now=T0
        )
    refused(
        engine,
        case_id,
        lambda s: escalation.escalate(s, case_id=case_id, now=LATE),
        GuardFailed,
        "deadline has not passed",
    )
    f.deliver_pending(engine, now=T0 + days(1))
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert case.deadline == T0 + days(31)
        body = session.scalars(
            select(OutboxMessage.text_body).where(OutboxMessage.case_id == case_id)
        ).all()[-1]
        assert "still spamming" in body
    with session_scope(engine) as session:
        escalation.escalate(session, case_id=case_id, now=T0 + days(32))
    with session_scope(engine) as session:
        escalation.enforce(
            session,
            case_id=case_id,
            adapter=RegistryAdapter(session),
            now=T0 + days(32),
        )
    with session_scope(engine) as session:
        assert service.get_or_raise(session, case_id=case_id).status is S.ENFORCED


def test_enforcement_without_a_delivered_change_request_is_refused(engine: Engine) -> None:
    """Defence in depth: a due enforcement whose change request has no delivery record."""
    case_id = f.case_in(engine, S.ENFORCEMENT_DUE)
    with session_scope(engine) as session:
        operations.latest_change_request(session, case_id=case_id).notified_at = None  # type: ignore[union-attr]
    refused(
        engine,
        case_id,
        lambda s: OPERATIONS["enforce"][1](s, case_id, LATE),
        GuardFailed,
        "no change request was delivered",
    )


def test_failed_delivery_blocks_escalation_until_a_lead_unblocks(engine: Engine) -> None:
    from cases.lifecycle import sweeper

    case_id = f.case_in(engine, S.CHANGES_REQUESTED)
    refused(
        engine,
        case_id,
        lambda s: notices.unblock_delivery(
            s, case_id=case_id, actor="lead-ann", reason="r", now=TIMES["report"]
        ),
        GuardFailed,
        "no blocked delivery",
    )
    with session_scope(engine) as session:
        outbox_id = session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.case_id == case_id)
        ).first()
        notices.delivery_failed(
            session, case_id=case_id, outbox_id=outbox_id, error="bounced", now=TIMES["report"]
        )
    refused(
        engine,
        case_id,
        lambda s: escalation.escalate(s, case_id=case_id, now=TIMES["enforce"]),
        GuardFailed,
        "not delivered",
    )
    report = sweeper.run_step(engine, "expire-deadlines", now=TIMES["enforce"])
    assert report.done == [] and report.failed == {}
    with session_scope(engine) as session:
        notices.unblock_delivery(
            session, case_id=case_id, actor="lead-ann", reason="called them", now=TIMES["enforce"]
        )
    report = sweeper.run_step(engine, "expire-deadlines", now=TIMES["enforce"])
    assert report.done == [case_id]


def test_appeal_after_the_window_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.ENFORCED)
    window_end = TIMES["enforce"] + days(180)
    submit = OPERATIONS["submit_appeal"][1]
    refused(
        engine,
        case_id,
        lambda s: submit(s, case_id, window_end + days(1)),
        GuardFailed,
        "appeal window closed",
    )
    with session_scope(engine) as session:
        submit(session, case_id, window_end)  # the last moment still counts


def test_second_appeal_is_refused(engine: Engine) -> None:
    case_id = f.case_in(engine, S.APPEALED)
    submit = OPERATIONS["submit_appeal"][1]
    refused(engine, case_id, lambda s: submit(s, case_id, TIMES["appeal"]), TransitionNotAllowed)
    with session_scope(engine) as session:
        OPERATIONS["uphold"][1](session, case_id, TIMES["decide"])
    refused(engine, case_id, lambda s: submit(s, case_id, TIMES["decide"]), TransitionNotAllowed)


def test_appeal_of_an_already_appealed_enforcement_is_refused(engine: Engine) -> None:
    """The guard behind the status check: an appeal row already exists for the decision."""
    case_id = f.case_in(engine, S.ENFORCED)
    with session_scope(engine) as session:
        decision = escalation.enforcement_or_raise(
            session, service.get_or_raise(session, case_id=case_id)
        )
        session.add(
            Appeal(
                enforcement_id=decision.id,
                case_id=case_id,
                statement="earlier",
                submitted_by="dev",
                submitted_at=TIMES["enforce"],
            )
        )
    refused(
        engine,
        case_id,
        lambda s: OPERATIONS["submit_appeal"][1](s, case_id, TIMES["appeal"]),
        GuardFailed,
        "already appealed",
    )


def test_the_approving_lead_cannot_decide_the_appeal(engine: Engine) -> None:
    case_id = f.case_in(engine, S.APPEALED, severity=Severity.HIGH)  # approved by lead-ann
    for overturn in (False, True):
        refused(
            engine,
            case_id,
            lambda s, o=overturn: appeals.decide_appeal(  # type: ignore[misc]
                s,
                case_id=case_id,
                reviewer="lead-ann",
                overturn=o,
                reason="r",
                now=TIMES["decide"],
            ),
            GuardFailed,
            "another lead must decide",
        )


def test_overturn_restores_access(engine: Engine) -> None:
    case_id = f.case_in(engine, S.APPEALED, severity=Severity.HIGH)
    with session_scope(engine) as session:
        OPERATIONS["overturn"][1](session, case_id, TIMES["decide"])
    state = f.db_state(engine, case_id)
    assert state["apps"] == [(a, AppStatus.ACTIVE) for a, _ in state["apps"]]  # type: ignore[attr-defined]
    assert state["snapshot"].outcome == "overturned"  # type: ignore[attr-defined]


LEAD_DECISIONS: dict[str, tuple[CaseStatus, Callable[[object, int, str], object]]] = {
    "confirm": (
        S.OPENED,
        lambda s, i, who: operations.confirm(s, case_id=i, actor=who, reason="r", now=T0),
    ),
    "dismiss": (
        S.OPENED,
        lambda s, i, who: operations.dismiss(s, case_id=i, actor=who, reason="r", now=T0),
    ),
    "resolve": (
        S.COMPLIANCE_REPORTED,
        lambda s, i, who: operations.resolve(
            s, case_id=i, actor=who, reason="r", now=T0 + days(21)
        ),
    ),
    "reject_compliance": (
        S.COMPLIANCE_REPORTED,
        lambda s, i, who: operations.reject_compliance(
            s, case_id=i, actor=who, reason="r", now=T0 + days(21)
        ),
    ),
    "extend": (
        S.CHANGES_REQUESTED,
        lambda s, i, who: operations.extend(s, case_id=i, actor=who, reason="r", now=T0 + days(21)),
    ),
    "approve_urgent": (
        S.CONFIRMED,
        lambda s, i, who: escalation.approve_enforcement(
            s, case_id=i, actor=who, reason="r", now=T0
        ),
    ),
    "approve_enforcement": (
        S.ENFORCEMENT_DUE,
        lambda s, i, who: escalation.approve_enforcement(
            s, case_id=i, actor=who, reason="r", now=TIMES["enforce"]
        ),
    ),
    "decline_enforcement": (
        S.ENFORCEMENT_DUE,
        lambda s, i, who: escalation.decline_enforcement(
            s, case_id=i, actor=who, reason="r", now=TIMES["enforce"]
        ),
    ),
    "unblock_delivery": (
        S.CHANGES_REQUESTED,
        lambda s, i, who: (
            notices.delivery_failed(s, case_id=i, outbox_id=1, error="x", now=T0 + days(21)),
            notices.unblock_delivery(s, case_id=i, actor=who, reason="r", now=T0 + days(21)),
        ),
    ),
    "uphold": (
        S.APPEALED,
        lambda s, i, who: appeals.decide_appeal(
            s,
            case_id=i,
            reviewer=who,
            overturn=False,
            reason="r",
            now=TIMES["decide"],
        ),
    ),
    "overturn": (
        S.APPEALED,
        lambda s, i, who: appeals.decide_appeal(
            s,
            case_id=i,
            reviewer=who,
            overturn=True,
            reason="r",
            now=TIMES["decide"],
        ),
    ),
    "assign": (
        S.OPENED,
        lambda s, i, who: operations.assign(s, case_id=i, actor=who, assignee="lead-cy", now=T0),
    ),
    # a developer's request for more time (rolled back with a refused decline), declined
    "decline_extension": (
        S.CHANGES_REQUESTED,
        lambda s, i, who: (
            extensions.request_extension(
                s, case_id=i, actor="developer:d", statement="time", now=T0 + days(20)
            ),
            extensions.decline_extension(s, case_id=i, actor=who, reason="r", now=T0 + days(21)),
        ),
    ),
    "resolve_delivery": (
        S.CHANGES_REQUESTED,
        lambda s, i, who: notices.delivery_resolved(
            s, case_id=i, outbox_id=1, resend=False, actor=who, reason="r", now=T0 + days(21)
        ),
    ),
}

# The operation each decision above records.
LEAD_DECISION_OPS: dict[str, Op] = {
    "confirm": Op.CONFIRM,
    "dismiss": Op.DISMISS,
    "resolve": Op.RESOLVE,
    "reject_compliance": Op.REJECT_COMPLIANCE,
    "extend": Op.EXTEND,
    "approve_urgent": Op.APPROVE_URGENT,
    "approve_enforcement": Op.APPROVE_ENFORCEMENT,
    "decline_enforcement": Op.DECLINE_ENFORCEMENT,
    "unblock_delivery": Op.DELIVERY_UNBLOCKED,
    "uphold": Op.UPHOLD,
    "overturn": Op.OVERTURN,
    "assign": Op.ASSIGN,
    "resolve_delivery": Op.DELIVERY_RESOLVED,
    "decline_extension": Op.DECLINE_EXTENSION,
}


def test_every_lead_only_operation_is_tried_by_a_non_lead() -> None:
    """The lead-only list comes from the state machine: an operation declared ``lead_only``
    without a decision above (or a decision whose operation is not lead-only) fails here."""
    lead_only = {op for op, spec in TRANSITIONS.items() if spec.lead_only} | {
        op for op, event in EVENTS.items() if event.lead_only
    }
    assert set(LEAD_DECISION_OPS) == set(LEAD_DECISIONS)
    assert set(LEAD_DECISION_OPS.values()) == lead_only


@pytest.mark.parametrize("name", list(LEAD_DECISIONS))
def test_configured_leads_refuse_anyone_else(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    status, decide = LEAD_DECISIONS[name]
    severity = Severity.HIGH if status is S.ENFORCEMENT_DUE else Severity.MEDIUM
    case_id = f.case_in(engine, status, severity=severity)  # built before leads are set
    monkeypatch.setenv("CASEWARD_LEADS", '["lead-bob", "lead-cy"]')
    reset_caches()
    refused(
        engine,
        case_id,
        lambda s: decide(s, case_id, "mallory"),
        GuardFailed,
        "'mallory' is not a lead",
    )
    before = f.db_state(engine, case_id)["events"]
    with session_scope(engine) as session:
        decide(session, case_id, "lead-cy")
    after = f.db_state(engine, case_id)["events"]
    assert len(after) > len(before)  # type: ignore[arg-type]
