"""The sweeper: every step that is due at a given time, over all cases, in batches.

Each step is a set-based selection of due case ids plus one domain operation per case.
Rows are locked as they are selected (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
serialises writers with ``BEGIN IMMEDIATE``), so two sweepers running at once never
perform a step twice, and a second sweep at the same time finds nothing left to do.
One failing case is reported and rolled back to its savepoint; the batch goes on.

A batch's cases are loaded (and locked) once, so the steps call the private variants of the
lifecycle operations (``operations._send_outreach``, ``escalation._enforce``...), which take
a locked case; every other caller uses the public ones, which take a case id and lock it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, exists, or_, select
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import CaseStatus
from cases.core.models import Case, Enforcement
from cases.core.settings import get_settings
from cases.enforcement.platform import get_adapter
from cases.enforcement.platform.base import PlatformAdapter
from cases.lifecycle import escalation, operations, service, write

log = logging.getLogger(__name__)

Runner = Callable[[Session, Case, datetime, PlatformAdapter], object]


def _timed_out(status: CaseStatus, now: datetime) -> ColumnElement[bool]:
    return and_(Case.status == status, Case.deadline <= now)


def _enforceable() -> ColumnElement[bool]:
    approved = exists().where(
        Enforcement.case_id == Case.id,
        or_(Enforcement.requires_approval.is_(False), Enforcement.approved_by.is_not(None)),
    )
    return and_(Case.status == CaseStatus.ENFORCEMENT_DUE, approved)


@dataclass(frozen=True)
class Step:
    """One kind of due work: which cases it selects and what it does to each."""

    name: str
    due: Callable[[datetime], ColumnElement[bool]]
    run: Runner


def _no_response_request(session: Session, case: Case, now: datetime, _: PlatformAdapter) -> None:
    operations._request_changes(
        session,
        case=case,
        actor=write.SYSTEM,
        reason="the outreach response window ended; specific changes are now required",
        now=now,
    )


STEPS: tuple[Step, ...] = (
    Step(
        "send-outreach",
        lambda now: Case.status == CaseStatus.CONFIRMED,
        lambda s, c, now, _: operations._send_outreach(s, case=c, now=now),
    ),
    Step(
        "request-changes",
        lambda now: _timed_out(CaseStatus.OUTREACH_SENT, now),
        _no_response_request,
    ),
    Step(
        "send-reminders",
        lambda now: and_(
            Case.status == CaseStatus.CHANGES_REQUESTED,
            Case.next_reminder_at <= now,
            Case.deadline > now,
        ),
        lambda s, c, now, _: operations._send_reminder(s, case=c, now=now),
    ),
    Step(
        "expire-deadlines",
        lambda now: and_(
            _timed_out(CaseStatus.CHANGES_REQUESTED, now), Case.delivery_blocked.is_(False)
        ),
        lambda s, c, now, _: escalation._escalate(s, case=c, now=now),
    ),
    Step(
        "enforce",
        lambda now: _enforceable(),
        lambda s, c, now, adapter: escalation._enforce(s, case=c, adapter=adapter, now=now),
    ),
    Step(
        "close-appeal-windows",
        lambda now: _timed_out(CaseStatus.ENFORCED, now),
        lambda s, c, now, _: escalation._close_unappealed(s, case=c, now=now),
    ),
)
STEP_NAMES = tuple(step.name for step in STEPS)


@dataclass
class StepReport:
    """What one step did: the cases it moved and the ones that failed, with why."""

    step: str
    done: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def _due_ids(session: Session, step: Step, now: datetime, after: int, limit: int) -> list[int]:
    query = select(Case.id).where(step.due(now), Case.id > after).order_by(Case.id).limit(limit)
    # SQLite renders no FOR UPDATE: its writers are serialised by BEGIN IMMEDIATE instead
    return list(session.scalars(query.with_for_update(skip_locked=True, of=Case)))


def _run_batch(
    session: Session, step: Step, ids: list[int], now: datetime, report: StepReport
) -> None:
    """Run ``step`` on a batch of locked cases.

    Fast path: the whole batch in one savepoint, flushed once. Only if a case fails is the
    batch rolled back to it and redone one savepoint per case, so a failing case is reported
    and the others still go through. Platform calls are idempotent, so a redo repeats none.
    """
    adapter = get_adapter(session, get_settings())
    try:
        with session.begin_nested():
            cases = service.get_many(session, case_ids=ids)
            write.remember_latest_events(session, ids)
            for case in cases:
                step.run(session, case, now, adapter)
        report.done.extend(case.id for case in cases)
        return
    except Exception as exc:  # redo case by case to find and isolate the failure
        log.info("%s: a case of the batch failed (%s); redoing case by case", step.name, exc)
    for case in service.get_many(session, case_ids=ids):
        try:
            with session.begin_nested():
                step.run(session, case, now, adapter)
        except Exception as exc:  # one case must not stop the batch
            log.warning("case %s: %s failed: %s", case.id, step.name, exc)
            report.failed[case.id] = f"{type(exc).__name__}: {exc}"
        else:
            report.done.append(case.id)


def run_step(
    engine: Engine,
    step: Step | str,
    *,
    now: datetime,
    batch_size: int = 500,
    on_batch: Callable[[StepReport], None] | None = None,
) -> StepReport:
    """Perform ``step`` for every case due at ``now``; one transaction per batch."""
    if isinstance(step, str):
        step = next(s for s in STEPS if s.name == step)
    report = StepReport(step.name)
    after = 0
    while True:
        with session_scope(engine) as session:
            ids = _due_ids(session, step, now, after, batch_size)
            if not ids:
                break
            _run_batch(session, step, ids, now, report)
            after = ids[-1]
        if on_batch is not None:
            on_batch(report)
    return report


def advance(
    engine: Engine,
    *,
    now: datetime,
    batch_size: int = 500,
    on_batch: Callable[[StepReport], None] | None = None,
) -> list[StepReport]:
    """Every step due at ``now``, in lifecycle order."""
    return [
        run_step(engine, step, now=now, batch_size=batch_size, on_batch=on_batch) for step in STEPS
    ]
