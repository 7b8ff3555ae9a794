"""Builders of real rows through the models and services (no mocks of our own code)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import OutboxStatus, Policy, Severity
from cases.core.models import App, Case, Developer, OutboxMessage
from cases.core.schemas import CaseCreate
from cases.lifecycle import escalation, notices, operations, service, write

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def developer(session: Session, *, email: str | None = None) -> Developer:
    n = next(_ids)
    dev = Developer(
        id=f"d-{n}", handle=f"dev{n}", email=email or f"dev{n}@example.org", created_at=T0
    )
    session.add(dev)
    session.flush()
    return dev


def app(session: Session, *, owner: Developer, requests_7d: int = 1000) -> App:
    n = next(_ids)
    created = App(
        id=f"a-{n}",
        developer_id=owner.id,
        name=f"App {n}",
        description="posts things",
        website=f"https://app{n}.example.net",
        callback_urls="",
        created_at=T0,
        requests_7d=requests_7d,
    )
    session.add(created)
    session.flush()
    return created


def open_case(
    session: Session,
    *,
    policy: Policy = Policy.SPAM,
    severity: Severity = Severity.MEDIUM,
    apps: int = 1,
    evidence: dict[str, object] | None = None,
    now: datetime = T0,
    on: tuple[list[str], list[str]] | None = None,
) -> Case:
    """A case on new apps of a new developer, or ``on`` existing (app ids, developer ids)."""
    if on is None:
        owner = developer(session)
        on = ([app(session, owner=owner).id for _ in range(apps)], [owner.id])
    return service.open_case(
        session,
        case_in=CaseCreate(
            policy=policy,
            app_ids=on[0],
            developer_ids=on[1],
            reason="reported by support",
            severity=severity,
            evidence={"spam_reports_per_1000_posts": 7.5} if evidence is None else evidence,
        ),
        actor="lead-ann",
        now=now,
    )


def deliver_pending(engine: Engine, *, now: datetime) -> int:
    """Mark every pending e-mail sent at ``now`` the way the delivery step records it."""
    with session_scope(engine) as session:
        pending = list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
            )
        )
        for message in pending:
            message.status = OutboxStatus.SENT
            message.sent_at = now
            session.flush()
            notices.notice_delivered(
                session, case_id=message.case_id, event_id=message.event_id, sent_at=now, now=now
            )
        return len(pending)


def days(n: float) -> timedelta:
    return timedelta(days=n)


# --- helpers of the case-core suite (states, guards, properties, CLI, concurrency) --------

# When each step of ``case_in`` happens: the change request is sent after the 14-day
# response window, its 30-day deadline ends on day 45, enforcement happens on day 46.
TIMES = {
    "outreach": T0,
    "request": T0 + timedelta(days=15),
    "deadline": T0 + timedelta(days=45),
    "report": T0 + timedelta(days=20),
    "enforce": T0 + timedelta(days=46),
    "appeal": T0 + timedelta(days=50),
    "decide": T0 + timedelta(days=52),
}


def deliver_case(engine: Engine, case_id: int, *, now: datetime) -> int:
    """Like :func:`deliver_pending`, for one case's pending e-mails only."""
    with session_scope(engine) as session:
        pending = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING)
                .where(OutboxMessage.case_id == case_id)
                .order_by(OutboxMessage.id)
            )
        )
        for message in pending:
            message.status = OutboxStatus.SENT
            message.sent_at = now
            session.flush()
            notices.notice_delivered(
                session, case_id=case_id, event_id=message.event_id, sent_at=now, now=now
            )
        return len(pending)


def case_in(
    engine: Engine,
    status: str,
    *,
    severity: Severity = Severity.MEDIUM,
    evidence: dict[str, object] | None = None,
    apps: int = 1,
    policy: Policy = Policy.SPAM,
    on: tuple[list[str], list[str]] | None = None,
) -> int:
    """A case driven through the real services to ``status``; returns its id.

    Path: opened → confirmed → outreach_sent (delivered) → changes_requested (delivered,
    deadline day 45) → compliance_reported → resolved; or → enforcement_due (day 46) →
    enforced (delivered) → appealed → closed (upheld by lead-bob).
    """
    from cases.core.enums import CaseStatus as S
    from cases.enforcement.platform.registry import RegistryAdapter

    order = [
        S.OPENED, S.CONFIRMED, S.OUTREACH_SENT, S.CHANGES_REQUESTED, S.ENFORCEMENT_DUE,
        S.ENFORCED, S.APPEALED, S.CLOSED,
    ]  # fmt: skip
    target = S(status)
    with session_scope(engine) as session:
        case_id = open_case(
            session, severity=severity, evidence=evidence, apps=apps, policy=policy, on=on
        ).id
        if target is S.DISMISSED:
            operations.dismiss(session, case_id=case_id, actor="lead-ann", reason="no", now=T0)
            return case_id
    if target is S.OPENED:
        return case_id
    with session_scope(engine) as session:
        operations.confirm(session, case_id=case_id, actor="lead-ann", reason="seen", now=T0)
    if target is S.CONFIRMED:
        return case_id
    with session_scope(engine) as session:
        operations.send_outreach(session, case_id=case_id, now=TIMES["outreach"])
    deliver_case(engine, case_id, now=TIMES["outreach"])
    if target is S.OUTREACH_SENT:
        return case_id
    with session_scope(engine) as session:
        operations.request_changes(
            session, case_id=case_id, actor=write.SYSTEM, reason="no answer", now=TIMES["request"]
        )
    deliver_case(engine, case_id, now=TIMES["request"])
    if target is S.CHANGES_REQUESTED:
        return case_id
    if target in (S.COMPLIANCE_REPORTED, S.RESOLVED):
        with session_scope(engine) as session:
            operations.report_compliance(
                session, case_id=case_id, actor="dev", statement="done", now=TIMES["report"]
            )
        if target is S.RESOLVED:
            with session_scope(engine) as session:
                operations.resolve(
                    session, case_id=case_id, actor="lead-ann", reason="ok", now=TIMES["report"]
                )
        return case_id
    with session_scope(engine) as session:
        escalation.escalate(session, case_id=case_id, now=TIMES["enforce"])
    if order.index(target) <= order.index(S.ENFORCEMENT_DUE):
        return case_id
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        decision = escalation.enforcement_or_raise(session, case)
        if decision.requires_approval:
            escalation.approve_enforcement(
                session, case_id=case_id, actor="lead-ann", reason="ok", now=TIMES["enforce"]
            )
        escalation.enforce(
            session, case_id=case_id, adapter=RegistryAdapter(session), now=TIMES["enforce"]
        )
    deliver_case(engine, case_id, now=TIMES["enforce"])
    if target is S.ENFORCED:
        return case_id
    appeal(engine, case_id)
    if target is S.APPEALED:
        return case_id
    decide(engine, case_id, overturn=False)
    return case_id


def appeal(engine: Engine, case_id: int, *, now: datetime = TIMES["appeal"]) -> None:
    """The developer appeals the case's enforcement."""
    from cases.enforcement import appeals

    with session_scope(engine) as session:
        appeals.submit_appeal(session, case_id=case_id, actor="dev", statement="please", now=now)


def decide(
    engine: Engine, case_id: int, *, overturn: bool, now: datetime = TIMES["decide"]
) -> None:
    """lead-bob upholds or overturns the appeal (lifted actions reach the platform later)."""
    from cases.enforcement import appeals

    with session_scope(engine) as session:
        appeals.decide_appeal(
            session,
            case_id=case_id,
            reviewer="lead-bob",
            overturn=overturn,
            reason="overturned" if overturn else "stands",
            now=now,
        )


def db_state(engine: Engine, case_id: int) -> dict[str, object]:
    """Everything a case operation may write, for before/after comparisons."""
    from cases.core.models import Appeal, CaseEvent, ChangeRequest, Enforcement, PlatformAction
    from cases.lifecycle import history

    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)

        def rows(query: object) -> list[tuple[object, ...]]:
            return [tuple(r) for r in session.execute(query)]  # type: ignore[call-overload]

        return {
            "snapshot": history.Snapshot.of(case),
            "version": case.version,
            "apps": [(a.id, a.status) for a in case.apps],
            "developers": [(d.id, d.status) for d in case.developers],
            "events": rows(
                select(CaseEvent.id, CaseEvent.kind)
                .where(CaseEvent.case_id == case_id)
                .order_by(CaseEvent.id)
            ),
            "outbox": rows(
                select(OutboxMessage.id, OutboxMessage.status)
                .where(OutboxMessage.case_id == case_id)
                .order_by(OutboxMessage.id)
            ),
            "change_requests": rows(
                select(
                    ChangeRequest.id,
                    ChangeRequest.response,
                    ChangeRequest.due_at,
                    ChangeRequest.notified_at,
                )
                .where(ChangeRequest.case_id == case_id)
                .order_by(ChangeRequest.id)
            ),
            "enforcement": rows(
                select(Enforcement.id, Enforcement.approved_by, Enforcement.executed_at).where(
                    Enforcement.case_id == case_id
                )
            ),
            "actions": rows(
                select(PlatformAction.id, PlatformAction.status)
                .join(Enforcement)
                .where(Enforcement.case_id == case_id)
                .order_by(PlatformAction.id)
            ),
            "appeals": rows(select(Appeal.id, Appeal.status).where(Appeal.case_id == case_id)),
        }
