"""A batch of steps written at its end: its case changes, events and e-mails in a few statements.

The sweeper runs one step over hundreds of locked cases in one savepoint. Inside
:func:`writing`, :func:`cases.lifecycle.write.record` hands each event and the outbox rows it
causes to the batch as plain rows instead of ORM objects; when the block ends they are
written with one versioned ``UPDATE`` of the changed cases (executed once for all of them,
per set of changed columns), one ``INSERT`` of the events (their ids read back by their
unique key) and one of the e-mails. The rows and the checks are those of the one-by-one
path, in the same transaction: if the block fails, nothing of it is written and the
caller's savepoint rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, event, insert, inspect, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from cases.core.db import Base
from cases.core.models import Case, CaseEvent, OutboxMessage

# session.info key: the batch being collected
_BATCH = "caseward.batch"
_KEYS_PER_QUERY = 2000  # (case_id, seq) pairs per IN (...): 4,000 bound parameters
_COLUMNS = frozenset(c.key for c in inspect(Case).column_attrs) - {"id", "version"}


@dataclass
class Batch:
    """The rows a batch of steps has recorded so far, in order."""

    cases: dict[int, Case] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    # the outbox rows of each event, by the event's index in ``events``
    emails: list[list[dict[str, Any]]] = field(default_factory=list)
    # other new rows (change requests), by model
    rows: dict[type[Base], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, case: Case, event_row: dict[str, Any], emails: list[dict[str, Any]]) -> None:
        self.cases[case.id] = case
        self.events.append(event_row)
        self.emails.append(emails)


def add_row(session: Session, model: type[Base], row: dict[str, Any]) -> None:
    """A new row of ``model``: collected by the batch being written, else added to the
    session as an object."""
    collecting = current(session)
    if collecting is None:
        session.add(model(**row))
    else:
        collecting.rows.setdefault(model, []).append(row)


@event.listens_for(Session, "after_soft_rollback")
def _forget_batch(session: Session, _previous: object) -> None:
    session.info.pop(_BATCH, None)


def current(session: Session) -> Batch | None:
    """The batch ``session`` is collecting, if any."""
    batch: Batch | None = session.info.get(_BATCH)
    return batch


@contextmanager
def writing(session: Session) -> Iterator[Batch]:
    """Collect the block's events and e-mails, and write them with its case changes at the
    end; on an error nothing collected is written."""
    if _BATCH in session.info:
        raise RuntimeError("a batch is already being collected in this session")
    batch = session.info[_BATCH] = Batch()
    try:
        yield batch
    finally:
        session.info.pop(_BATCH, None)
    write(session, batch)


def update_cases(session: Session, cases: list[Case]) -> None:
    """Write the changed columns of loaded ``cases`` with one versioned ``UPDATE`` per set of
    changed columns, executed for all its cases at once; the ORM then holds them as written.

    Each row is matched on its id and the version it was loaded with, as the ORM's own flush
    does, and the whole statement fails with :class:`StaleDataError` if any row did not match.
    """
    groups: dict[tuple[str, ...], list[Case]] = {}
    for case in cases:
        changed = tuple(sorted(_COLUMNS.intersection(inspect(case).committed_state)))
        if changed:
            groups.setdefault(changed, []).append(case)
    table = Case.__table__
    assert isinstance(table, Table)
    for columns, group in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
            .values({c: bindparam(f"b_{c}") for c in columns} | {"version": bindparam("b_next")})
        )
        rows = [
            {
                "b_id": case.id,
                "b_version": case.version,
                "b_next": case.version + 1,
                **{f"b_{c}": getattr(case, c) for c in columns},
            }
            for case in group
        ]
        result = session.connection().execute(statement, rows)
        if result.rowcount != len(rows):
            raise StaleDataError(
                f"UPDATE of {len(rows)} cases matched {result.rowcount}: a case changed "
                "since it was loaded"
            )
        for case in group:
            for column in columns:
                set_committed_value(case, column, getattr(case, column))
            set_committed_value(case, "version", case.version + 1)
            state = inspect(case)
            if not state.committed_state:  # nothing left to write: no longer dirty
                state._commit_all(state.dict, session.identity_map)


def _event_ids(session: Session, keys: list[tuple[int, int]]) -> list[int]:
    """The ids of the events ``(case_id, seq)`` (their unique key), in that order.

    Read back rather than returned by the INSERT: SQLite cannot return the ids of a
    many-row INSERT in the rows' order, so SQLAlchemy would insert them one at a time.
    """
    found: dict[tuple[int, int], int] = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        query = select(CaseEvent.id, CaseEvent.case_id, CaseEvent.seq).where(
            tuple_(CaseEvent.case_id, CaseEvent.seq).in_(chunk)
        )
        found.update(
            ((case_id, seq), event_id) for event_id, case_id, seq in session.execute(query)
        )
    return [found[key] for key in keys]


def write(session: Session, batch: Batch) -> None:
    """The batch's case changes, other new rows, events and e-mails, in that order."""
    update_cases(session, list(batch.cases.values()))
    for model, rows in batch.rows.items():
        session.execute(insert(model), rows)
    if not batch.events:
        return
    session.execute(insert(CaseEvent), batch.events)
    ids = _event_ids(session, [(e["case_id"], e["seq"]) for e in batch.events])
    emails = [
        row | {"event_id": event_id}
        for event_id, rows in zip(ids, batch.emails, strict=True)
        for row in rows
    ]
    if emails:
        session.execute(insert(OutboxMessage), emails)
