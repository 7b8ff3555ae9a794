"""Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from cases.core.db import Base, make_engine
from cases.core.migrate import alembic_config, upgrade
from tests.conftest import fresh_pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        created = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield created
        created.dispose()
        return
    request.getfixturevalue("pg_database")  # skips (or fails under CI) without a server
    with fresh_pg_database("caseward_migrate") as url:
        created = make_engine(url)
        yield created
        created.dispose()


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def _schema(engine: Engine) -> dict[str, object]:
    found = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
            sorted(i["name"] or "" for i in found.get_indexes(table)),
            sorted(str(k["name"]) for k in found.get_foreign_keys(table)),
        )
        for table in sorted(found.get_table_names())
    }


def test_upgrade_builds_the_models_schema_and_is_idempotent(empty_engine: Engine) -> None:
    assert inspect(empty_engine).get_table_names() == []
    head = ScriptDirectory.from_config(alembic_config(empty_engine)).get_current_head()

    before, after = upgrade(empty_engine)
    assert (before, after) == (None, head)
    assert set(inspect(empty_engine).get_table_names()) == {
        *Base.metadata.tables,
        "alembic_version",
    }
    assert _differences(empty_engine) == []
    schema = _schema(empty_engine)

    assert upgrade(empty_engine) == (head, head)  # the second run is a no-op
    assert _schema(empty_engine) == schema
    assert _differences(empty_engine) == []


def test_there_is_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
