"""A lead's decision on many cases: select them by filter, then decide each one in batches.

Every case gets exactly what the single decision gives it: the same domain operation, its
own event and its own e-mails, its own refusal when its status or a guard says no. The work
is set-based: one transaction per batch of cases, which are locked and loaded with a few
queries (their apps and developers, their latest event times) and written in one flush.
Only when a case refuses is its batch rolled back and redone one savepoint per case, so the
refusal is reported with its reason and the other cases go through (the sweeper's shape,
``cases.lifecycle.sweeper``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, exists, func, select
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import CaseStatus, Policy, Severity
from cases.core.models import Case, Enforcement
from cases.email.recovery import each_in_savepoint
from cases.enforcement import strikes
from cases.lifecycle import escalation, operations, service, write
from cases.lifecycle.states import EVENTS, OPEN_STATUSES, TRANSITIONS, Op

log = logging.getLogger(__name__)

S = CaseStatus
BATCH = 500  # cases per transaction


@dataclass(frozen=True)
class CaseFilter:
    """Which cases a decision is for; every field left out selects everything.

    ``case_ids`` are cases named one by one (a file of ids): each is tried, whatever its
    status, and reported when the decision refuses it. Without them and without ``status``,
    the decision's default cases are selected (see :data:`DECISIONS`).
    """

    policy: Policy | None = None
    status: CaseStatus | None = None
    min_score: float | None = None
    severity: Severity | None = None
    opened_before: datetime | None = None
    case_ids: tuple[int, ...] | None = None
    limit: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """Conditions on ``Case`` rows (the ids are matched separately, in chunks)."""
        found: list[ColumnElement[bool]] = []
        if self.policy is not None:
            found.append(Case.policy == self.policy.value)
        if self.status is not None:
            found.append(Case.status == self.status)
        if self.min_score is not None:
            found.append(Case.score >= self.min_score)
        if self.severity is not None:
            found.append(Case.severity == self.severity)
        if self.opened_before is not None:
            found.append(Case.created_at < self.opened_before)
        return found


@dataclass(frozen=True)
class DecisionInput:
    """What the lead typed: who decides, when, why, and the decision's own arguments."""

    actor: str
    now: datetime
    reason: str = ""
    assignee: str | None = None
    days: int | None = None


# a batch's locked cases -> the operation on each (a batch may first read what all need)
PerCase = Callable[[Case], object]
Prepare = Callable[[Session, Sequence[Case], DecisionInput], PerCase]


@dataclass(frozen=True)
class BulkDecision:
    """A lead's decision taken on many cases: its operations in the state machine (the
    statuses it may start from), the cases it is taken on when no status and no ids are
    given, and its domain operation on one locked case."""

    ops: tuple[Op, ...]
    default: Callable[[], ColumnElement[bool]]
    prepare: Prepare

    def emails(self) -> bool:
        """Whether the decision e-mails the developers (its cases need their apps and
        developers loaded; the others are loaded without them, which halves the reads)."""
        return any(
            (TRANSITIONS[op].emails if op in TRANSITIONS else EVENTS[op].emails) for op in self.ops
        )

    def allowed(self) -> frozenset[CaseStatus]:
        """Every status the state machine lets the decision start from."""
        found: set[CaseStatus] = set()
        for op in self.ops:
            found |= TRANSITIONS[op].sources if op in TRANSITIONS else EVENTS[op].allowed_in
        return frozenset(found)


def _awaiting_approval() -> ColumnElement[bool]:
    waiting = exists().where(
        Enforcement.case_id == Case.id,
        Enforcement.requires_approval.is_(True),
        Enforcement.approved_by.is_(None),
    )
    return and_(Case.status == S.ENFORCEMENT_DUE, waiting)


def _confirm_each(session: Session, cases: Sequence[Case], inputs: DecisionInput) -> PerCase:
    """Confirm each case, its developers' strikes read once for the batch."""
    prior = strikes.for_cases(session, [c.id for c in cases], now=inputs.now)
    return lambda case: operations._confirm(
        session,
        case=case,
        actor=inputs.actor,
        reason=inputs.reason,
        now=inputs.now,
        prior=prior.get(case.id, {}),
    )


DECISIONS: dict[str, BulkDecision] = {
    "confirm": BulkDecision((Op.CONFIRM,), lambda: Case.status == S.OPENED, _confirm_each),
    # without --status, a dismissal takes only cases not yet confirmed
    "dismiss": BulkDecision(
        (Op.DISMISS,),
        lambda: Case.status == S.OPENED,
        lambda s, _, d: (
            lambda c: operations._dismiss(s, case=c, actor=d.actor, reason=d.reason, now=d.now)
        ),
    ),
    "assign": BulkDecision(
        (Op.ASSIGN,),
        lambda: Case.status.in_(sorted(OPEN_STATUSES)),
        lambda s, _, d: (
            lambda c: operations._assign(
                s, case=c, actor=d.actor, assignee=d.assignee or "", now=d.now
            )
        ),
    ),
    # an urgent approval (before the deadline) is never taken in bulk by accident: it
    # needs an explicit --status
    "approve-enforcement": BulkDecision(
        (Op.APPROVE_ENFORCEMENT, Op.APPROVE_URGENT),
        _awaiting_approval,
        lambda s, _, d: (
            lambda c: escalation._approve_enforcement(
                s, case=c, actor=d.actor, reason=d.reason, now=d.now
            )
        ),
    ),
    "decline-enforcement": BulkDecision(
        (Op.DECLINE_ENFORCEMENT,),
        lambda: Case.status == S.ENFORCEMENT_DUE,
        lambda s, _, d: (
            lambda c: escalation._decline_enforcement(
                s, case=c, actor=d.actor, reason=d.reason, now=d.now
            )
        ),
    ),
    "extend": BulkDecision(
        (Op.EXTEND,),
        lambda: and_(
            Case.status == S.CHANGES_REQUESTED,
            Case.extension_granted.is_(False),
            Case.deadline.is_not(None),
        ),
        lambda s, _, d: (
            lambda c: operations._extend(
                s, case=c, actor=d.actor, reason=d.reason, now=d.now, days=d.days
            )
        ),
    ),
}


@dataclass
class Selected:
    """The cases a filter selects, oldest first; how many of them are in a status the
    decision may start from (the others will be refused); the named ids that name no case."""

    ids: list[int]
    applicable: int
    missing: list[int] = field(default_factory=list)


def select_cases(session: Session, *, decision: str, filters: CaseFilter) -> Selected:
    """The ids ``filters`` select for ``decision``, oldest first, at most ``limit``."""
    chosen = DECISIONS[decision]
    applies = Case.status.in_(sorted(chosen.allowed()))
    query = select(Case.id).where(*filters.conditions()).order_by(Case.id)
    if filters.case_ids is None:
        if filters.status is None:
            query = query.where(chosen.default())
        ids = list(session.scalars(query.limit(filters.limit)))
        return Selected(ids, _count_applicable(session, ids, applies))
    wanted = sorted(set(filters.case_ids))
    ids = []
    existing: set[int] = set()
    for start in range(0, len(wanted), service.ID_CHUNK):
        chunk = wanted[start : start + service.ID_CHUNK]
        ids += session.scalars(query.where(Case.id.in_(chunk)))
        existing.update(session.scalars(select(Case.id).where(Case.id.in_(chunk))))
    ids = sorted(ids)[: filters.limit]
    missing = [i for i in wanted if i not in existing]
    return Selected(ids, _count_applicable(session, ids, applies), missing)


def _count_applicable(session: Session, ids: Sequence[int], applies: ColumnElement[bool]) -> int:
    count = 0
    for start in range(0, len(ids), service.ID_CHUNK):
        chunk = ids[start : start + service.ID_CHUNK]
        query = select(func.count()).where(Case.id.in_(chunk), applies)
        count += session.scalar(query) or 0
    return count


@dataclass
class BulkOutcome:
    """What a bulk decision did: the cases decided, the ones refused with why, and the
    error that stopped it early, if one did (the batches before it are kept)."""

    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    stopped: str | None = None

    def merge(self, other: BulkOutcome) -> None:
        self.done.extend(other.done)
        self.refused.update(other.refused)


def _locked(session: Session, ids: Sequence[int], *, subjects: bool) -> list[Case]:
    """The cases of ``ids`` locked for update, in id order; their apps and developers
    loaded when ``subjects`` (a decision that e-mails), and their latest event times read."""
    if subjects:
        cases = service.get_many(session, case_ids=ids, lock=True)
    else:
        query = select(Case).where(Case.id.in_(ids)).order_by(Case.id)
        cases = list(session.scalars(query.with_for_update(of=Case)))
    write.remember_latest_events(session, [c.id for c in cases])
    return cases


def _decide_batch(
    session: Session, ids: Sequence[int], decision: BulkDecision, inputs: DecisionInput
) -> BulkOutcome:
    """Decide a batch of cases in ``session``: fast path, the whole batch in one savepoint
    flushed once; on a refusal, the batch again one savepoint per case."""
    outcome = BulkOutcome()
    subjects, prepare = decision.emails(), decision.prepare
    try:
        with session.begin_nested():
            cases = _locked(session, ids, subjects=subjects)
            each = prepare(session, cases, inputs)
            for case in cases:
                each(case)
    except Exception as exc:  # redo case by case to find and isolate the refusal
        log.info("a case of the batch refused (%s); redoing case by case", exc)
    else:
        return _done(outcome, ids, [c.id for c in cases])
    cases = _locked(session, ids, subjects=subjects)
    each = prepare(session, cases, inputs)
    by_id = {c.id: c for c in cases}
    redone = each_in_savepoint(session, list(by_id), lambda case_id: each(by_id[case_id]))
    outcome.refused.update(redone.refused)
    return _done(outcome, ids, redone.done)


def _done(outcome: BulkOutcome, ids: Sequence[int], done: Sequence[int]) -> BulkOutcome:
    """``outcome`` with ``done`` decided, and every id neither decided nor refused reported
    as naming no case (it was deleted, or never existed)."""
    decided = set(done)
    outcome.done.extend(done)
    outcome.refused.update(
        (i, f"no case with id {i}") for i in ids if i not in decided and i not in outcome.refused
    )
    return outcome


def decide_in_session(
    session: Session, ids: Sequence[int], *, decision: BulkDecision, inputs: DecisionInput
) -> BulkOutcome:
    """Decide ``ids`` inside the caller's unit of work, in batches (triage rules after
    detection: the same transaction as the cases they decide)."""
    outcome = BulkOutcome()
    for start in range(0, len(ids), BATCH):
        outcome.merge(_decide_batch(session, ids[start : start + BATCH], decision, inputs))
    return outcome


def decide(
    engine: Engine,
    decision: str,
    ids: Sequence[int],
    *,
    inputs: DecisionInput,
    batch_size: int = BATCH,
    on_batch: Callable[[BulkOutcome], None] | None = None,
) -> BulkOutcome:
    """Take ``decision`` on every case of ``ids``, one transaction per batch.

    A case that refuses is reported and the others go through. An error that is not a
    refusal (the database went away) stops the run: the batches before it stay decided and
    the outcome says what stopped it.
    """
    chosen = DECISIONS[decision]
    outcome = BulkOutcome()
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        try:
            with session_scope(engine) as session:
                batch = _decide_batch(session, chunk, chosen, inputs)
        except Exception as exc:
            outcome.stopped = f"{type(exc).__name__}: {exc}"
            log.exception("bulk %s stopped at case %s", decision, chunk[0])
            return outcome
        outcome.merge(batch)  # committed
        if on_batch is not None:
            on_batch(outcome)
    return outcome
