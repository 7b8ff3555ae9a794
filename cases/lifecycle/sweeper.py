"""The sweeper: every step that is due at a given time, over all cases, in batches.

Each step is a set-based selection of due case ids plus one domain operation per case.
Rows are locked as they are selected (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
serialises writers with ``BEGIN IMMEDIATE``), so two sweepers running at once never
perform a step twice, and a second sweep at the same time finds nothing left to do.
One failing case is reported and rolled back to its savepoint; the batch goes on.

A batch's cases are loaded (and locked) once, so the steps call the private variants of the
lifecycle operations (``operations._send_outreach``, ``escalation._escalate``...), which take
a locked case; every other caller uses the public ones, which take a case id and lock it.

Enforcement calls the platform, so it does not run inside the batch's transaction: its
actions (to apply, or to lift after a decision) are claimed and committed first, each answer
is recorded in a transaction of its own, and the cases are noticed last
(:func:`enforce_batch`), as the outbox sends e-mail.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Engine, and_, exists, not_, or_, select
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import ActionStatus, CaseStatus
from cases.core.models import Case, Enforcement, PlatformAction
from cases.core.settings import Settings, get_settings
from cases.enforcement import execution
from cases.enforcement.execution import Claim
from cases.enforcement.platform import get_adapter
from cases.enforcement.platform.base import PlatformAdapter
from cases.lifecycle import batch, escalation, extensions, operations, service, write

log = logging.getLogger(__name__)

Runner = Callable[[Session, Case, datetime, PlatformAdapter], object]
T = TypeVar("T")


def _timed_out(status: CaseStatus, now: datetime) -> ColumnElement[bool]:
    return and_(Case.status == status, Case.deadline <= now)


def _enforceable() -> ColumnElement[bool]:
    """Due and approved; or enforced with actions left to apply, answers lost or notices
    owed; or under appeal with answers lost or notices owed (retries pause); or, in any
    status, actions a decision lifted that the platform has not been told of."""
    approved = exists().where(
        Enforcement.case_id == Case.id,
        or_(Enforcement.requires_approval.is_(False), Enforcement.approved_by.is_not(None)),
    )

    def having(*statuses: ActionStatus) -> ColumnElement[bool]:
        return exists().where(
            Enforcement.case_id == Case.id,
            PlatformAction.enforcement_id == Enforcement.id,
            or_(
                PlatformAction.status.in_(statuses),
                and_(
                    PlatformAction.status == ActionStatus.APPLIED,
                    PlatformAction.noticed_at.is_(None),
                ),
            ),
        )

    return or_(
        and_(Case.status == CaseStatus.ENFORCEMENT_DUE, approved),
        and_(
            Case.status == CaseStatus.ENFORCED, having(ActionStatus.PLANNED, ActionStatus.APPLYING)
        ),
        and_(Case.status == CaseStatus.APPEALED, having(ActionStatus.APPLYING)),
        having(ActionStatus.REVERSING),
    )


@dataclass
class StepReport:
    """What one step did: the cases it moved and the ones that failed, with why."""

    step: str
    done: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


# a step that opens its own transactions over a batch of due case ids
BatchRunner = Callable[[Engine, list[int], datetime, StepReport], None]


@dataclass(frozen=True)
class Step:
    """One kind of due work: which cases it selects and what it does to each (or to the
    whole batch, in transactions of its own)."""

    name: str
    due: Callable[[datetime], ColumnElement[bool]]
    run: Runner | None = None
    batch: BatchRunner | None = None


def _no_response_request(session: Session, case: Case, now: datetime, _: PlatformAdapter) -> None:
    operations._request_changes(
        session,
        case=case,
        actor=write.SYSTEM,
        reason="the outreach response window ended; specific changes are now required",
        now=now,
    )


def _each_locked(
    engine: Engine, ids: list[int], report: StepReport, action: Callable[[Session, Case], T]
) -> dict[int, T]:
    """``action`` on each of the cases ``ids``, locked, one savepoint each, one transaction;
    a failing case is reported and the others go on. Returns each case's result."""
    results: dict[int, T] = {}
    with session_scope(engine) as session:
        for case in service.get_many(session, case_ids=ids, lock=True):
            try:
                with session.begin_nested():
                    results[case.id] = action(session, case)
            except Exception as exc:  # one case must not stop the batch
                log.warning("case %s: %s failed: %s", case.id, report.step, exc)
                report.failed[case.id] = f"{type(exc).__name__}: {exc}"
    return results


def _apply(engine: Engine, settings: Settings, claims: list[Claim], now: datetime) -> list[str]:
    """Call the platform for each claim and record each answer in a transaction of its own.
    Once the platform cannot be reached, the remaining claims are given back uncalled."""
    errors: list[str] = []
    unreachable: str | None = None
    for claimed in claims:
        with session_scope(engine) as session:
            if unreachable is None:
                outcome = execution.call(get_adapter(session, settings), claimed)
            else:
                outcome = execution.not_called(claimed, unreachable)
            execution.record(session, outcome, now=now)
        if outcome.error and unreachable is None:
            target = f"{claimed.spec.target_type.value} {claimed.spec.target_id}"
            errors.append(f"{claimed.spec.kind.value} on {target}: {outcome.error}")
            if not outcome.refused:
                unreachable = f"not tried: {outcome.error}"
    return errors


def enforce_batch(engine: Engine, ids: list[int], now: datetime, report: StepReport) -> None:
    """The enforce step: claim (committed), call and record each action, then notice. Also
    what a lead's command runs on its case once the decision that lifts actions commits.

    A case is done when the platform answered all it was asked (or a notice went out); a
    platform error is reported with the case, which is enforced nonetheless if anything was
    applied.
    """
    settings = get_settings()
    worker = execution.worker_id()
    claims = _each_locked(
        engine,
        ids,
        report,
        lambda s, case: escalation.claim_actions(
            s,
            case=case,
            worker=worker,
            now=now,
            lease_seconds=settings.platform.claim_lease_seconds,
        ),
    )
    errors = {
        case_id: _apply(engine, settings, claimed, now) for case_id, claimed in claims.items()
    }
    noticed = _each_locked(
        engine,
        list(claims),
        report,
        lambda s, case: escalation.notify_applied(s, case=case, now=now),
    )
    for case_id, queued in noticed.items():
        if errors[case_id]:
            done = "enforced in part; " if queued else ""
            report.failed[case_id] = done + "; ".join(errors[case_id])
        elif queued or claims[case_id]:
            report.done.append(case_id)


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
        # a failed notice, or a request for more time no lead has answered, holds it
        lambda now: and_(
            _timed_out(CaseStatus.CHANGES_REQUESTED, now),
            Case.delivery_blocked.is_(False),
            not_(extensions.awaiting_clause()),
        ),
        lambda s, c, now, _: escalation._escalate(s, case=c, now=now),
    ),
    Step(
        "enforce",
        lambda now: _enforceable(),
        batch=enforce_batch,
    ),
    Step(
        "close-appeal-windows",
        lambda now: _timed_out(CaseStatus.ENFORCED, now),
        lambda s, c, now, _: escalation._close_unappealed(s, case=c, now=now),
    ),
)
STEP_NAMES = tuple(step.name for step in STEPS)


def _due_ids(session: Session, step: Step, now: datetime, after: int, limit: int) -> list[int]:
    query = select(Case.id).where(step.due(now), Case.id > after).order_by(Case.id).limit(limit)
    # SQLite renders no FOR UPDATE: its writers are serialised by BEGIN IMMEDIATE instead
    return list(session.scalars(query.with_for_update(skip_locked=True, of=Case)))


def lift_now(engine: Engine, *, case_id: int, now: datetime) -> StepReport:
    """Once a decision that lifts actions has committed (a decline, an appeal decided), ask
    the platform at once rather than at the next sweep; what fails, ``advance`` asks again."""
    report = StepReport("enforce")
    with session_scope(engine) as session:
        lifting = session.scalar(
            select(PlatformAction.id)
            .join(Enforcement)
            .where(Enforcement.case_id == case_id)
            .where(PlatformAction.status == ActionStatus.REVERSING)
            .limit(1)
        )
    if lifting is not None:
        enforce_batch(engine, [case_id], now, report)
    return report


def _run_batch(
    session: Session, step: Step, ids: list[int], now: datetime, report: StepReport
) -> None:
    """Run ``step`` on a batch of locked cases.

    Fast path: the whole batch in one savepoint, its case changes, events and e-mails
    written at its end in a few statements (:mod:`cases.lifecycle.batch`). Only if a case
    fails is the batch rolled back to it and redone one savepoint per case, so a failing
    case is reported and the others still go through. Platform calls are idempotent, so a
    redo repeats none.
    """
    assert step.run is not None
    adapter = get_adapter(session, get_settings())
    try:
        with session.begin_nested():
            cases = service.get_many(session, case_ids=ids)
            write.remember_latest_events(session, ids)
            with batch.writing(session):
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


@contextmanager
def _batch_memory() -> Iterator[None]:
    """No cyclic garbage collection while a batch runs (it resumes after, and collects
    what the batch left). A batch allocates hundreds of thousands of short-lived objects,
    freed by reference counting, and each full collection they trigger traverses the whole
    heap: in a Prefect worker (some 300,000 objects of Prefect's own) that cost a 10,000-case
    sweep 1.4 s of CPU instead of 0.5 s. A batch's memory is bounded by its size."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        with _batch_memory(), session_scope(engine) as session:
            ids = _due_ids(session, step, now, after, batch_size)
            if ids and step.batch is None:
                _run_batch(session, step, ids, now, report)
        if not ids:
            break
        if step.batch is not None:
            step.batch(engine, ids, now, report)
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
