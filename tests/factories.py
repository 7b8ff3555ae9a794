"""Builders of real rows through the models and services (no mocks of our own code)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases import lifecycle, service
from cases.db import session_scope
from cases.enums import OutboxStatus, Policy, Severity
from cases.models import App, Case, Developer, OutboxMessage
from cases.schemas import CaseCreate

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
) -> Case:
    owner = developer(session)
    subjects = [app(session, owner=owner) for _ in range(apps)]
    return service.open_case(
        session,
        case_in=CaseCreate(
            policy=policy,
            app_ids=[a.id for a in subjects],
            developer_ids=[owner.id],
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
            session.scalars(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING))
        )
        for message in pending:
            message.status = OutboxStatus.SENT
            message.sent_at = now
            session.flush()
            lifecycle.notice_delivered(
                session, case_id=message.case_id, event_id=message.event_id, sent_at=now, now=now
            )
        return len(pending)


def days(n: float) -> timedelta:
    return timedelta(days=n)
