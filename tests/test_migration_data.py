"""Upgrading a populated database keeps every row, from every revision, on both backends.

Rows are written by the real services on a database at head (every table gets some), then
for each revision a fresh database is built at that revision, filled with those rows (the
columns that revision has), upgraded to head and compared row for row: the columns a later
revision adds must come out as the services would have written them.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, Table, inspect, select

from cases.core.db import Base, make_engine, session_scope
from cases.core.enums import CaseStatus
from cases.core.migrate import alembic_config, upgrade
from cases.core.models import OutboxMessage, RelayCursor
from cases.core.settings import get_settings
from cases.email import events
from cases.integrity import run_checks
from cases.leads.sla import record_breaches
from cases.statements.submission import submit
from tests import factories as f
from tests.factories import TIMES
from tests.local_http import serving
from tests.test_migrations import empty_engine
from tests.transparency_server import TOKEN, TransparencyDatabase, _handler

__all__ = ["empty_engine"]

Rows = dict[str, list[dict[str, Any]]]
REVISIONS = [
    r.revision
    for r in reversed(
        list(ScriptDirectory.from_config(alembic_config(make_engine("sqlite://"))).walk_revisions())
    )
]


def _dump(engine: Engine) -> Rows:
    with engine.connect() as conn:
        return {
            table.name: [
                dict(row._mapping)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Rows:
    """Every table's rows after real work: an appeal upheld, one overturned, one resolved,
    their statements of reasons submitted, the work queue's SLA breaches recorded, and an
    event of SendGrid's webhook."""
    path = tmp_path_factory.mktemp("history") / "head.db"
    database = TransparencyDatabase()
    with pytest.MonkeyPatch.context() as patch, serving(_handler(database)) as server:
        database.server = server
        patch.setenv("CASEWARD_SIMULATION", "true")  # the work runs at simulated times
        patch.setenv("CASEWARD_STATEMENTS__API_URL", database.url)
        patch.setenv("CASEWARD_STATEMENTS__API_TOKEN", TOKEN)
        get_settings.cache_clear()
        rows = _history(path)
    get_settings.cache_clear()
    return rows


def _history(path: Path) -> Rows:
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    for status in (CaseStatus.CLOSED, CaseStatus.APPEALED, CaseStatus.RESOLVED):
        f.case_in(engine, status)
    with session_scope(engine) as session:
        session.add(RelayCursor(name="prefect-events", last_event_id=7))
        record_breaches(session, now=TIMES["decide"] + timedelta(days=30))
    submit(engine, settings=get_settings(), now=TIMES["decide"])
    with session_scope(engine) as session:  # SendGrid reports a deferral (no outbox column)
        message = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        assert message is not None
        deferral = events.ProviderEvent(
            "sg-event-1", "deferred", message.message_id, TIMES["decide"], "421 try later"
        )
        ingested = events.ingest(
            session, events=[deferral], now=TIMES["decide"] + timedelta(days=30)
        )
        assert ingested.recorded == 1
    rows = _dump(engine)
    engine.dispose()
    assert all(rows.values()), f"tables without rows: {[t for t, r in rows.items() if not r]}"
    return rows


def _fill(engine: Engine, rows: Rows) -> Rows:
    """Insert ``rows`` into the tables and columns the database has at its revision;
    returns what every table must hold after the upgrade (a table created later: nothing)."""
    found = inspect(engine)
    columns = {
        table: [c["name"] for c in found.get_columns(table.name)]
        for table in Base.metadata.sorted_tables
        if found.has_table(table.name)
    }
    with engine.begin() as conn:
        for table, names in columns.items():
            old = Table(table.name, MetaData(), *(Column(n, table.c[n].type) for n in names))
            conn.execute(old.insert(), [{n: row[n] for n in names} for row in rows[table.name]])
    kept = {table.name for table in columns}
    return {name: table_rows if name in kept else [] for name, table_rows in rows.items()}


@pytest.mark.parametrize("revision", REVISIONS)
def test_upgrading_a_populated_database_keeps_every_row(
    empty_engine: Engine, history: Rows, revision: str
) -> None:
    upgrade(empty_engine, revision)
    expected = _fill(empty_engine, history)
    upgrade(empty_engine)
    assert _dump(empty_engine) == expected
    with session_scope(empty_engine) as session:  # and every invariant holds on the result
        assert run_checks(session, now=f.TIMES["decide"], settings=get_settings()).violations == []
    if empty_engine.dialect.name == "sqlite":
        with empty_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def test_init_copies_a_populated_sqlite_database_aside_before_migrating(
    history: Rows,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from caseward.cli.main import main
    from tests.conftest import reset_caches

    path = tmp_path / "prod.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0002")
    _fill(engine, history)
    engine.dispose()
    before = _counts(path)
    monkeypatch.setenv("CASEWARD_DATABASE_URL", f"sqlite:///{path}")
    reset_caches()

    assert main(["init"]) == 0
    err = capsys.readouterr().err
    (copy,) = tmp_path.glob("prod.db.0002-*.bak")
    assert f"to {copy} before migrating" in err and "migrated 0002 -> " in err
    assert _counts(copy) == before  # the copy is the database as it was, revision included
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
    migrated = _counts(path)
    assert all(migrated[name] == count for name, count in before.items())

    assert main(["init"]) == 0  # up to date: nothing to protect, no second copy
    assert "up to date" in capsys.readouterr().err
    assert len(list(tmp_path.glob("prod.db.*.bak"))) == 1


def test_init_makes_no_copy_of_a_new_or_empty_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from caseward.cli.main import main
    from tests.conftest import reset_caches

    path = tmp_path / "new.db"
    monkeypatch.setenv("CASEWARD_DATABASE_URL", f"sqlite:///{path}")
    reset_caches()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0001")  # a schema, no rows
    engine.dispose()
    assert main(["init"]) == 0
    assert "copied" not in capsys.readouterr().err
    assert list(tmp_path.glob("*.bak")) == []


def test_a_dangling_reference_fails_the_check(tmp_path: Path) -> None:
    from cases.core.migrate import MigrationFailed, check_foreign_keys, foreign_keys_off

    engine = make_engine(f"sqlite:///{tmp_path / 'broken.db'}")
    upgrade(engine)
    with engine.connect() as conn, foreign_keys_off(conn), conn.begin():
        conn.exec_driver_sql("INSERT INTO case_apps (case_id, app_id) VALUES (99, 'nowhere')")
        with pytest.raises(MigrationFailed, match="break 2 reference"):
            check_foreign_keys(conn)
    engine.dispose()
