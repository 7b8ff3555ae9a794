"""Random operation sequences keep every case legal and its event log a faithful history.

A hypothesis state machine drives one case on a fresh in-memory SQLite database: lead
decisions, developer answers, failed and successful deliveries, and the sweeper at random
simulated times. After every step the case must be in a legal state and replaying its
events must rebuild it; an operation that is refused must change nothing at all.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.pool import StaticPool

from cases.core.db import Base, make_engine, session_scope
from cases.core.enums import ActionStatus, AppStatus, CaseStatus, OutboxStatus, Severity
from cases.core.errors import CasewardError
from cases.core.models import (
    App,
    Appeal,
    Case,
    CaseEvent,
    ChangeRequest,
    Enforcement,
    OutboxMessage,
    PlatformAction,
)
from cases.enforcement import appeals
from cases.lifecycle import escalation, history, notices, service, sweeper
from cases.lifecycle.states import TERMINAL, TIMERS
from tests import factories as f
from tests.factories import T0, days
from tests.operations import OPERATIONS, Operation

LEADS = ("lead-ann", "lead-bob")
EVIDENCE_FREE_STARTS = frozenset(
    {CaseStatus.OPENED, CaseStatus.DISMISSED, CaseStatus.CONFIRMED, CaseStatus.OUTREACH_SENT}
)


class CaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = make_engine("sqlite://", poolclass=StaticPool)
        Base.metadata.create_all(self.engine)
        self.now: datetime = T0
        self.case_id: int | None = None
        self.refusals = 0

    def teardown(self) -> None:
        self.engine.dispose()

    @initialize(
        start=st.sampled_from(list(CaseStatus)),
        severity=st.sampled_from(list(Severity)),
        evidence=st.booleans(),
        apps=st.integers(1, 2),
    )
    def open_case(self, start: CaseStatus, severity: Severity, evidence: bool, apps: int) -> None:
        """A case opened, or driven through the services to a random status to start from."""
        if not evidence and start not in EVIDENCE_FREE_STARTS:
            start = CaseStatus.CHANGES_REQUESTED
        self.case_id = f.case_in(
            self.engine, start, severity=severity, apps=apps, evidence=None if evidence else {}
        )
        with session_scope(self.engine) as session:
            self.now = max(e.at for e in service.events(session, case_id=self.case_id))

    # --- what happens to a case ----------------------------------------------------------

    def attempt(self, call: Operation) -> None:
        """Perform ``call``; if it is refused, nothing at all may have changed."""
        assert self.case_id is not None
        before = self.state()
        try:
            with session_scope(self.engine) as session:
                call(session, self.case_id, self.now)
        except CasewardError:
            self.refusals += 1
            assert self.state() == before

    def state(self) -> tuple[object, ...]:
        """The case's fields and version (bumped by any update) and how many rows it owns."""
        case_id = self.case_id

        def rows(model: type[Any], *where: Any) -> Any:
            return select(func.count()).select_from(model).where(*where).scalar_subquery()

        with session_scope(self.engine) as session:
            case = session.get(Case, case_id)
            assert case is not None
            counts = session.execute(
                select(
                    rows(CaseEvent, CaseEvent.case_id == case_id),
                    rows(OutboxMessage, OutboxMessage.case_id == case_id),
                    rows(ChangeRequest, ChangeRequest.case_id == case_id),
                    rows(ChangeRequest, ChangeRequest.responded_at.is_not(None)),
                    rows(Enforcement, Enforcement.approved_by.is_not(None)),
                    rows(PlatformAction, PlatformAction.status != ActionStatus.PLANNED),
                    rows(Appeal),
                    rows(App, App.status != AppStatus.ACTIVE),
                )
            ).one()
            return (history.Snapshot.of(case), case.version, *counts)

    @rule(elapsed=st.sampled_from([0, 1, 6, 13, 15, 29, 31, 60, 181, 400]))
    def time_passes(self, elapsed: int) -> None:
        self.now += days(elapsed)

    @rule(elapsed=st.sampled_from([0, 1, 15, 31, 200]), deliver=st.booleans())
    def sweep(self, elapsed: int, deliver: bool) -> None:
        """What production does over time: the sweeper runs, and mail goes out."""
        self.now += days(elapsed)
        sweeper.advance(self.engine, now=self.now)
        if deliver:
            f.deliver_pending(self.engine, now=self.now)

    @rule()
    def advance(self) -> None:
        sweeper.advance(self.engine, now=self.now)  # a failing case is rolled back and reported

    @rule()
    def deliver(self) -> None:
        f.deliver_pending(self.engine, now=self.now)

    @rule(name=st.sampled_from(sorted(OPERATIONS)))
    def operation(self, name: str) -> None:
        self.attempt(OPERATIONS[name][1])

    @rule(reviewer=st.sampled_from(LEADS), overturn=st.booleans())
    def decide_appeal(self, reviewer: str, overturn: bool) -> None:
        self.attempt(
            lambda s, i, now: appeals.decide_appeal(
                s,
                case_id=i,
                reviewer=reviewer,
                overturn=overturn,
                reason="decided",
                now=now,
            )
        )

    @rule(actor=st.sampled_from(LEADS))
    def approve(self, actor: str) -> None:
        self.attempt(
            lambda s, i, now: escalation.approve_enforcement(
                s, case_id=i, actor=actor, reason="approved", now=now
            )
        )

    @rule()
    def delivery_fails(self) -> None:
        self.attempt(
            lambda s, i, now: notices.delivery_failed(
                s, case_id=i, outbox_id=0, error="mailbox full", now=now
            )
        )

    @rule()
    def unblock(self) -> None:
        self.attempt(
            lambda s, i, now: notices.unblock_delivery(
                s, case_id=i, actor="lead-ann", reason="resent", now=now
            )
        )

    # --- what must always hold -----------------------------------------------------------

    @invariant()
    @precondition(lambda self: self.case_id is not None)
    def case_is_legal_and_replayable(self) -> None:
        with session_scope(self.engine) as session:
            case = session.get(Case, self.case_id)
            assert case is not None
            events = service.events(session, case_id=case.id)
            assert case.status in set(CaseStatus)
            assert case.status.value == events[-1].to_status
            assert (case.outcome is not None) == (case.status in TERMINAL), case.outcome
            assert history.replay(events) == history.Snapshot.of(case)

            entering = next(e for e in reversed(events) if e.from_status != e.to_status)
            unsent = session.scalar(
                select(func.count()).where(
                    OutboxMessage.event_id == entering.id,
                    OutboxMessage.status != OutboxStatus.SENT,
                )
            )
            running = case.status in TIMERS and not unsent
            assert (case.deadline is not None) == running, (case.status, entering.kind)
            if case.next_reminder_at is not None:
                assert case.status is CaseStatus.CHANGES_REQUESTED
                assert case.deadline is not None and case.next_reminder_at < case.deadline


def test_random_operation_sequences_keep_cases_legal() -> None:
    run_state_machine_as_test(
        CaseMachine,
        settings=settings(
            max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "50")),
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
