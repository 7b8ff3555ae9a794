"""SLA breaches: a work-queue item waiting past its target is recorded once, then announced.

:func:`record_breaches` stores each overdue item of the queue as one ``sla_breaches`` row,
unique per case, kind and the time it started waiting, so running it again (or two runs at
once) records nothing twice. A flow announces the rows not yet announced
(:func:`unannounced`) as Prefect events and marks them (:func:`mark_announced`); an
announcement repeated after a crash carries the same event id, which Prefect stores once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cases.core.db import insert_on_conflict
from cases.core.models import Case, SlaBreach
from cases.leads.queue import overdue, work_queue


def record_breaches(session: Session, *, now: datetime) -> int:
    """Record every item overdue at ``now`` not recorded yet; how many were new."""
    late = overdue(work_queue(session, now=now))
    if not late:
        return 0
    rows = [
        {
            "case_id": i.case_id,
            "kind": i.kind,
            "since": i.since,
            "due_at": i.due_at,
            "detected_at": now,
        }
        for i in late
    ]
    insert = insert_on_conflict(session, SlaBreach).on_conflict_do_nothing(
        index_elements=[SlaBreach.case_id, SlaBreach.kind, SlaBreach.since]
    )
    return len(list(session.scalars(insert.returning(SlaBreach.id), rows)))


class BreachRead(BaseModel):
    """A recorded breach with what its announcement needs."""

    id: int
    case_id: int
    policy: str
    status: str
    kind: str
    since: datetime
    due_at: datetime
    detected_at: datetime


def unannounced(session: Session, *, limit: int = 5000) -> list[BreachRead]:
    """Breaches not announced yet, oldest first."""
    rows = session.execute(
        select(SlaBreach, Case.policy, Case.status)
        .join(Case, Case.id == SlaBreach.case_id)
        .where(SlaBreach.announced_at.is_(None))
        .order_by(SlaBreach.id)
        .limit(limit)
    )
    return [
        BreachRead(
            id=b.id,
            case_id=b.case_id,
            policy=policy,
            status=str(status),
            kind=b.kind,
            since=b.since,
            due_at=b.due_at,
            detected_at=b.detected_at,
        )
        for b, policy, status in rows
    ]


def mark_announced(session: Session, breach_ids: Sequence[int], *, now: datetime) -> None:
    session.execute(
        update(SlaBreach)
        .where(SlaBreach.id.in_(breach_ids), SlaBreach.announced_at.is_(None))
        .values(announced_at=now)
    )
