"""The sweeper writes a batch of steps in a few statements, and the rows are those of the
one-by-one path: the same events, e-mails, change requests and case fields. A failing case
is still isolated, and a case changed behind the batch's back stops the batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cases.core.db import session_scope
from cases.core.enums import CaseStatus
from cases.core.models import Case, CaseEvent, ChangeRequest, OutboxMessage
from cases.lifecycle import batch, history, operations, service, sweeper, write
from tests.factories import T0, days, open_case

N = 12


def _confirmed(engine: Engine, n: int) -> list[int]:
    with session_scope(engine) as session:
        ids = [open_case(session, apps=1 + i % 3).id for i in range(n)]
        for case_id in ids:
            operations.confirm(session, case_id=case_id, actor="lead-ann", reason="ok", now=T0)
    return ids


def _written(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Every row a step writes about each case, read back from the database, without the
    row ids (the second way numbers its rows after the first, rolled back, on PostgreSQL)."""
    session.expire_all()
    seq_of = {
        event_id: seq for event_id, seq in session.execute(select(CaseEvent.id, CaseEvent.seq))
    }
    written: dict[int, dict[str, Any]] = {}
    for case in service.get_many(session, case_ids=ids):
        events = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
        )
        emails = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.case_id == case.id)
            .order_by(OutboxMessage.idempotency_key)
        )
        requests = session.scalars(select(ChangeRequest).where(ChangeRequest.case_id == case.id))
        written[case.id] = {
            "case": (history.Snapshot.of(case), case.version, case.event_count),
            "events": [
                (e.seq, e.at, e.actor, e.kind, e.from_status, e.to_status, e.reason, e.data)
                for e in events
            ],
            "emails": [
                (
                    seq_of[m.event_id],
                    m.template,
                    m.developer_id,
                    m.to_address,
                    m.subject,
                    m.text_body,
                    m.html_body,
                    m.idempotency_key,
                    m.message_id,
                    m.status,
                    m.created_at,
                    m.next_attempt_at,
                )
                for m in emails
            ],
            "requests": [(r.changes, r.requested_at, r.due_at) for r in requests],
        }
    return written


def _both_ways(
    engine: Engine, ids: list[int], step: str, each: Callable[[Session, int], object], now: Any
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """What the sweeper's batch of ``step`` writes (then rolled back), and what ``each``
    case alone writes (kept)."""
    chosen = next(s for s in sweeper.STEPS if s.name == step)
    with session_scope(engine) as session:
        savepoint = session.begin_nested()
        report = sweeper.StepReport(step)
        sweeper._run_batch(session, chosen, ids, now, report)
        assert report.done == ids and not report.failed
        batched = _written(session, ids)
        savepoint.rollback()
        for case_id in ids:
            each(session, case_id)
        session.flush()
        alone = _written(session, ids)
    return batched, alone


@contextmanager
def statements(engine: Engine) -> Iterator[Counter[str]]:
    """The statements ``engine`` runs in the block, by their first two words and table
    (an executemany counts once)."""
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        seen[" ".join(words[:3] if words[0] == "INSERT" else words[:2])] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_batch_writes_what_each_case_alone_writes(engine: Engine) -> None:
    ids = _confirmed(engine, N)
    batched, alone = _both_ways(
        engine,
        ids,
        "send-outreach",
        lambda s, case_id: operations.send_outreach(s, case_id=case_id, now=T0 + days(1)),
        T0 + days(1),
    )
    assert batched == alone
    assert all(len(rows["emails"]) == 1 and len(rows["events"]) == 3 for rows in alone.values())
    with session_scope(engine) as session:  # delivered: the response window ran out
        session.execute(update(Case).where(Case.id.in_(ids)).values(deadline=T0 + days(2)))
    batched, alone = _both_ways(
        engine,
        ids,
        "request-changes",
        lambda s, case_id: operations.request_changes(
            s,
            case_id=case_id,
            actor=write.SYSTEM,
            reason="the outreach response window ended; specific changes are now required",
            now=T0 + days(3),
        ),
        T0 + days(3),
    )
    assert batched == alone
    assert all(len(rows["requests"]) == 1 and len(rows["emails"]) == 2 for rows in alone.values())


def test_a_batch_is_written_in_a_few_statements(engine: Engine) -> None:
    ids = _confirmed(engine, N)
    with statements(engine) as seen:
        report = sweeper.run_step(engine, "send-outreach", now=T0 + days(1), batch_size=N)
    assert report.done == ids and not report.failed
    # one versioned UPDATE of the cases, one INSERT of events and one of e-mails (an
    # executemany counts once), whatever the number of cases
    assert seen["UPDATE cases"] == 1
    assert seen["INSERT INTO case_events"] == 1
    assert seen["INSERT INTO outbox"] == 1


def test_a_failing_case_is_isolated_and_the_batch_goes_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _confirmed(engine, 5)
    real = operations._send_outreach

    def fails_once_on_the_third(session: Any, *, case: Case, now: Any) -> Case:
        if case.id == ids[2]:
            raise RuntimeError("boom")
        return real(session, case=case, now=now)

    monkeypatch.setattr(operations, "_send_outreach", fails_once_on_the_third)
    report = sweeper.run_step(engine, "send-outreach", now=T0 + days(1))
    assert report.done == [i for i in ids if i != ids[2]]
    assert list(report.failed) == [ids[2]] and "boom" in report.failed[ids[2]]
    with session_scope(engine) as session:
        statuses = {c.id: c.status for c in service.get_many(session, case_ids=ids)}
        outreach = session.scalars(
            select(OutboxMessage.case_id).where(OutboxMessage.template == "outreach")
        ).all()
    assert statuses[ids[2]] is CaseStatus.CONFIRMED and ids[2] not in outreach
    assert sorted(set(outreach)) == report.done


def test_a_case_changed_since_it_was_loaded_stops_the_batch(engine: Engine) -> None:
    (case_id,) = _confirmed(engine, 1)
    with session_scope(engine) as session:
        with pytest.raises(StaleDataError), batch.writing(session):
            (case,) = service.get_many(session, case_ids=[case_id])
            # another writer moves the row on: the version the batch loaded is gone
            session.connection().execute(
                update(Case).where(Case.id == case_id).values(version=Case.version + 1)
            )
            operations._send_outreach(session, case=case, now=T0 + days(1))
        session.rollback()
    with session_scope(engine) as session:
        (case,) = service.get_many(session, case_ids=[case_id])
        outreach = session.scalars(select(OutboxMessage.id)).all()
    assert case.status is CaseStatus.CONFIRMED and outreach == []
