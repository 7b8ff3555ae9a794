"""Schema migrations (Alembic), run by ``caseward init`` and by deployments.

SQLite alters a table by copying it: the batch mode creates the new table, copies the rows,
drops the old table and renames the copy. With ``PRAGMA foreign_keys=ON`` that ``DROP`` is
an implicit ``DELETE``, so every ``ON DELETE CASCADE`` child row (events, e-mails, actions)
would go with it. Migrations therefore run with foreign keys off (the pragma only takes
effect outside a transaction), and ``PRAGMA foreign_key_check`` must come back clean before
the migration commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, select, table

from cases.core.errors import CasewardError

# a package resource: Alembic finds it through importlib.resources, installed or in a checkout
MIGRATIONS = "cases.core:migrations"


class MigrationFailed(CasewardError):
    """A migration would leave the database inconsistent; nothing was changed."""


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    url = engine.url.render_as_string(hide_password=False)
    # Alembic's config is a ConfigParser: a '%' (an escaped character in a password) is
    # interpolation syntax unless doubled
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision(engine: Engine) -> str:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite, no foreign-key actions while the block runs (no cascade on a table copy)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: none is open yet
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(connection: Connection) -> None:
    """Raise :class:`MigrationFailed` if any row of an SQLite database references nothing."""
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL checks every foreign key as it is written
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        sample = ", ".join(f"{row[0]} rowid {row[1]} -> {row[2]}" for row in broken[:5])
        raise MigrationFailed(f"the migration would break {len(broken)} reference(s): {sample}")


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Create or migrate the schema to ``target`` (the newest revision); returns (before, after).

    All revisions run in one transaction: on any error nothing is changed.
    """
    config = alembic_config(engine)
    with engine.connect() as connection, foreign_keys_off(connection), connection.begin():
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, target)
        check_foreign_keys(connection)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after or ""


def _sqlite_file(engine: Engine) -> Path | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    path = Path(database)
    return path if path.is_file() else None


def _holds_data(engine: Engine) -> bool:
    found = inspect(engine)
    names = [n for n in found.get_table_names() if n != "alembic_version"]
    with engine.connect() as connection:
        return any(
            connection.execute(select(1).select_from(table(name)).limit(1)).first()
            for name in names
        )


def backup_before_upgrade(engine: Engine, *, now: datetime | None = None) -> Path | None:
    """Copy an SQLite database that holds data and has migrations to run; returns the copy.

    The copy is taken with SQLite's online backup API (consistent, write-ahead log
    included) next to the database, named after the revision it holds and the time.
    PostgreSQL is backed up by its operators' own tools; an empty or current file needs none.
    """
    path = _sqlite_file(engine)
    if path is None:
        return None
    before = current_revision(engine)
    if before == head_revision(engine) or not _holds_data(engine):
        return None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.{before or 'unversioned'}-{stamp}.bak")
    counter = 1
    while target.exists():
        counter += 1
        target = target.with_name(f"{path.name}.{before or 'unversioned'}-{stamp}-{counter}.bak")
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target
