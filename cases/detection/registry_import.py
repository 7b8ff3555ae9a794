"""Copy a validated snapshot's developers and apps into Caseward's registry.

Set-based and streamed: rows leave DuckDB in batches and go in with one
``INSERT ... ON CONFLICT DO UPDATE`` per batch (SQLite and PostgreSQL dialects). A row that
did not change is not rewritten, and ``status`` (what enforcement changes) is never part of
the update, so a newer snapshot brings new apps and changed names without touching
enforcement. The caller owns the transaction: the import is all-or-nothing with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
from sqlalchemy import Table, func, or_, select
from sqlalchemy.orm import Session

from cases.core.db import insert_on_conflict
from cases.core.enums import AccountStatus, AppStatus
from cases.core.models import App, Developer
from cases.detection.snapshot import Progress, Snapshot

BATCH = 5000

# {created} is the created_at expression: the timestamp itself, or SQLite's stored text
DEVELOPERS_SQL = """
SELECT developer_id, handle, email, {created} FROM developers ORDER BY developer_id
"""
SQLITE_TIME = "strftime(created_at, '%Y-%m-%d %H:%M:%S.%f')"

# requests_7d saturates at the largest 64-bit integer: a sum of huge counts is still stored
APPS_SQL = """
WITH last AS (SELECT max(hour) AS h FROM usage),
recent AS (
    SELECT app_id, CAST(least(sum(requests), 9223372036854775807) AS BIGINT) AS requests_7d
    FROM usage, last
    WHERE hour > last.h - INTERVAL 7 DAY GROUP BY app_id
)
SELECT a.app_id, a.developer_id, a.name, a.description, a.website, a.callback_urls,
       {created}, a.rate_limit_per_hour, coalesce(r.requests_7d, 0)
FROM (SELECT * FROM apps) a LEFT JOIN recent r USING (app_id)
ORDER BY a.app_id
"""


@dataclass(frozen=True)
class ImportSummary:
    """What an import changed in the registry."""

    developers: int
    developers_new: int
    developers_changed: int
    apps: int
    apps_new: int
    apps_changed: int


def _upsert(
    session: Session,
    table: Table,
    columns: list[str],
    reader: duckdb.DuckDBPyConnection,
    sql: str,
    status: str,
    progress: Progress,
) -> tuple[int, int, int]:
    """Upsert every row of ``sql`` (first column: the key); returns (rows, new, changed)."""
    before = session.execute(select(func.count()).select_from(table)).scalar_one()
    if session.get_bind().dialect.name == "sqlite":
        rows, written = _sqlite_rows(session, table, columns, reader, sql, status, progress)
    else:
        rows, written = _core_rows(session, table, columns, reader, sql, progress)
    after = session.execute(select(func.count()).select_from(table)).scalar_one()
    new = int(after) - int(before)
    changed = max(written - new, 0) if written >= 0 else -1
    return rows, new, changed


def _core_rows(
    session: Session,
    table: Table,
    columns: list[str],
    reader: duckdb.DuckDBPyConnection,
    sql: str,
    progress: Progress,
) -> tuple[int, int]:
    """Portable path (PostgreSQL): SQLAlchemy core upsert, one executemany per batch."""
    insert = insert_on_conflict(session, table)
    updated = columns[1:]
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c[columns[0]]],
        set_={c: insert.excluded[c] for c in updated},
        where=or_(*(table.c[c].is_distinct_from(insert.excluded[c]) for c in updated)),
    )
    stmt = upsert.returning(table.c[columns[0]])  # rows inserted or changed, not skipped ones
    cursor = reader.execute(sql.format(created="created_at"))
    rows = written = 0
    while batch := cursor.fetchmany(BATCH):
        result = session.execute(stmt, [_row(columns, values) for values in batch])
        written += len(result.all())
        rows += len(batch)
        progress(f"registry: {table.name} {rows:,}")
    return rows, written


def _sqlite_rows(
    session: Session,
    table: Table,
    columns: list[str],
    reader: duckdb.DuckDBPyConnection,
    sql: str,
    status: str,
    progress: Progress,
) -> tuple[int, int]:
    """SQLite path: DuckDB formats the values as SQLAlchemy stores them (timestamps as UTC
    text), so batches go to the driver's ``executemany`` without per-value Python work.
    The statement is the same upsert as the portable path (``IS NOT`` is SQLite's
    null-safe inequality); ``status`` only takes its default on insert."""
    key, updated = columns[0], columns[1:]
    name = table.name
    statement = (
        f"INSERT INTO {name} ({', '.join(columns)}, status) "
        f"VALUES ({', '.join('?' for _ in columns)}, '{status}') "
        f"ON CONFLICT ({key}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in updated)
        + " WHERE "
        + " OR ".join(f"{name}.{c} IS NOT excluded.{c}" for c in updated)
    )
    connection = session.connection()
    cursor = reader.execute(sql.format(created=SQLITE_TIME))
    rows = written = 0
    while batch := cursor.fetchmany(BATCH * 10):
        result = connection.exec_driver_sql(statement, batch)
        written = -1 if written < 0 or result.rowcount < 0 else written + result.rowcount
        rows += len(batch)
        progress(f"registry: {name} {rows:,}")
    return rows, written


def _row(columns: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(columns, values, strict=True))
    created = row.get("created_at")
    if isinstance(created, datetime) and created.tzinfo is None:
        row["created_at"] = created.replace(tzinfo=UTC)
    return row


def import_registry(
    session: Session, snapshot: Snapshot, *, progress: Progress | None = None
) -> ImportSummary:
    """Upsert the snapshot's developers and apps; never touches ``status``.

    The snapshot is read through a cursor of its own, so the import may run in a thread
    beside other work on the snapshot (``cases.detection.run.registry_import_alongside``).
    """
    report = progress or (lambda _m: None)
    dev_table = Developer.__table__
    app_table = App.__table__
    assert isinstance(dev_table, Table) and isinstance(app_table, Table)
    reader = snapshot.con.cursor()
    try:
        devs = _upsert(
            session,
            dev_table,
            ["id", "handle", "email", "created_at"],
            reader,
            DEVELOPERS_SQL,
            AccountStatus.ACTIVE.value,
            report,
        )
        apps = _upsert(
            session,
            app_table,
            [
                "id",
                "developer_id",
                "name",
                "description",
                "website",
                "callback_urls",
                "created_at",
                "rate_limit_per_hour",
                "requests_7d",
            ],
            reader,
            APPS_SQL,
            AppStatus.ACTIVE.value,
            report,
        )
    finally:
        reader.close()
    return ImportSummary(devs[0], devs[1], devs[2], apps[0], apps[1], apps[2])
