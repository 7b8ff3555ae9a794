"""Two sweepers at once: every due case is advanced exactly once (PostgreSQL and SQLite).

Two real OS processes run ``caseward advance --json`` against the test database. They
import everything first, then wait for one start signal, so their batches overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cases.core.db import session_scope
from cases.core.enums import CaseStatus, OutboxStatus, Policy
from cases.core.models import CaseEvent, OutboxMessage
from cases.core.schemas import CaseCreate
from cases.lifecycle import notices, operations, service, sweeper
from tests import factories as f
from tests.factories import T0, TIMES, days

ROOT = Path(__file__).resolve().parents[1]
N_CASES = 200

WAIT_THEN_RUN = """
import sys, time
from pathlib import Path
from caseward.cli.main import main

ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.002)
sys.exit(main(sys.argv[3:]))
"""


def confirmed_cases(engine: Engine, n: int) -> dict[int, set[str]]:
    """``n`` confirmed cases; every tenth has two developers. Case id → developer ids."""
    made: dict[int, set[str]] = {}
    with session_scope(engine) as session:
        for i in range(n):
            devs = [f.developer(session) for _ in range(2 if i % 10 == 0 else 1)]
            app = f.app(session, owner=devs[0])
            case = service.open_case(
                session,
                case_in=CaseCreate(
                    policy=Policy.SPAM,
                    app_ids=[app.id],
                    developer_ids=[d.id for d in devs],
                    reason="spam wave",
                    evidence={"spam_reports_per_1000_posts": 9.0},
                ),
                actor="detector",
                now=T0,
            )
            operations.confirm(session, case_id=case.id, actor="lead-ann", reason="ok", now=T0)
            made[case.id] = {d.id for d in devs}
    return made


def run_two_sweepers(tmp_path: Path, url: str, *argv: str) -> list[tuple[int, Any, str]]:
    """Start two ``caseward`` processes together; their exit codes, JSON outputs, stderr."""
    go = tmp_path / "go"
    env = os.environ | {"CASEWARD_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    procs = []
    for n in range(2):
        ready = tmp_path / f"ready-{n}"
        procs.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", WAIT_THEN_RUN, str(ready), str(go), *argv],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs):
        assert all(p.poll() is None for _, p in procs), [p.communicate() for _, p in procs]
        assert time.monotonic() < deadline, "sweepers did not start"
        time.sleep(0.01)
    go.touch()
    results = []
    for _, proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, json.loads(out) if out.strip() else None, err))
    return results


def event_counts(engine: Engine, kind: str) -> dict[int, int]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(CaseEvent.case_id, func.count())
            .where(CaseEvent.kind == kind)
            .group_by(CaseEvent.case_id)
        )
        return {case_id: n for case_id, n in rows}


def test_two_sweepers_advance_each_case_exactly_once(engine: Engine, tmp_path: Path) -> None:
    cases = confirmed_cases(engine, N_CASES)
    url = engine.url.render_as_string(hide_password=False)
    results = run_two_sweepers(
        tmp_path, url, "--now", T0.isoformat(), "advance", "--json", "--batch-size", "40"
    )
    for code, _, err in results:
        assert code == 0, err
    done = [set(report["send-outreach"]["done"]) for _, report, _ in results]
    for (_, report, _), ids in zip(results, done, strict=True):
        assert len(report["send-outreach"]["done"]) == len(ids)  # no case twice in one list
    assert not done[0] & done[1]
    assert done[0] | done[1] == set(cases)
    assert all(report["send-outreach"]["failed"] == {} for _, report, _ in results)

    assert event_counts(engine, "send_outreach") == dict.fromkeys(cases, 1)
    with session_scope(engine) as session:
        mails = session.execute(
            select(OutboxMessage.case_id, OutboxMessage.developer_id, func.count())
            .where(OutboxMessage.template == "outreach")
            .group_by(OutboxMessage.case_id, OutboxMessage.developer_id)
        ).all()
        statuses = set(session.scalars(select(service.Case.status).distinct()))
    assert {(c, d): n for c, d, n in mails} == {
        (c, d): 1 for c, devs in cases.items() for d in devs
    }
    assert statuses == {CaseStatus.OUTREACH_SENT}

    # the same sweep again, at the same time: nothing is left to do
    again = sweeper.advance(engine, now=T0)
    assert all((r.done, r.failed) == ([], {}) for r in again)
    assert event_counts(engine, "send_outreach") == dict.fromkeys(cases, 1)


def _mixed_cases(engine: Engine) -> None:
    for status in (
        CaseStatus.CONFIRMED,
        CaseStatus.OUTREACH_SENT,
        CaseStatus.CHANGES_REQUESTED,
        CaseStatus.CHANGES_REQUESTED,
        CaseStatus.ENFORCEMENT_DUE,
        CaseStatus.ENFORCED,
        CaseStatus.APPEALED,
    ):
        f.case_in(engine, status)


def _totals(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(CaseEvent)) or 0,
            session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
        )


@pytest.mark.parametrize(
    "when", [TIMES["enforce"], TIMES["enforce"] + days(400)], ids=["day-46", "day-446"]
)
def test_a_second_advance_at_the_same_time_does_nothing(engine: Engine, when: Any) -> None:
    _mixed_cases(engine)
    first = sweeper.advance(engine, now=when)
    assert any(r.done for r in first)
    assert all(not r.failed for r in first), [r.failed for r in first]
    after_first = _totals(engine)
    second = sweeper.advance(engine, now=when)
    assert [(r.step, r.done, r.failed) for r in second] == [(s, [], {}) for s in sweeper.STEP_NAMES]
    assert _totals(engine) == after_first


def test_two_deliveries_finishing_one_notice_at_once_start_its_deadline(
    pg_engine: Engine,
) -> None:
    """The last two e-mails of one notice recorded by two transactions at the same time.

    Each transaction sees the other's e-mail as unsent until it commits; only the case
    lock taken before counting makes the second one wait and start the deadline.
    """
    case_id = next(c for c, devs in confirmed_cases(pg_engine, 1).items() if len(devs) == 2)
    sweeper.run_step(pg_engine, "send-outreach", now=T0)
    with session_scope(pg_engine) as session:
        first, second = session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.case_id == case_id)
        ).all()

    def record_sent(session: Any, outbox_id: int) -> None:
        message = session.get(OutboxMessage, outbox_id)
        message.status, message.sent_at = OutboxStatus.SENT, T0
        session.flush()
        notices.notice_delivered(
            session, case_id=case_id, event_id=message.event_id, sent_at=T0, now=T0
        )

    with session_scope(pg_engine) as a:
        record_sent(a, first)  # sees the second e-mail unsent: returns, holding the case lock
        b_done = threading.Event()

        def other_delivery() -> None:
            with session_scope(pg_engine) as b:
                record_sent(b, second)
            b_done.set()

        thread = threading.Thread(target=other_delivery)
        thread.start()
        assert not b_done.wait(0.5)  # waits for the case lock
    thread.join(timeout=30)
    assert b_done.is_set()
    with session_scope(pg_engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        assert case.deadline == T0 + days(14)
