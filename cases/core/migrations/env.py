"""Alembic environment: migrates the database of the engine handed in by cases.core.migrate."""

from __future__ import annotations

from alembic import context

import cases.core.models  # noqa: F401  (registers every table)
from cases.core.db import Base, get_engine
from cases.core.migrate import check_foreign_keys, foreign_keys_off

config = context.config
connection = config.attributes.get("connection")


def _run(conn: object) -> None:
    context.configure(
        connection=conn,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:  # cases.core.migrate.upgrade: its transaction, foreign keys off
    _run(connection)
else:  # the alembic command itself
    engine = get_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn, foreign_keys_off(conn), conn.begin():
        _run(conn)
        check_foreign_keys(conn)
