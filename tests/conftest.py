"""Shared fixtures: isolated settings per test, and engines on SQLite and PostgreSQL.

PostgreSQL tests create their own database (one per test session and xdist worker) on the
server named by CASEWARD_TEST_POSTGRES_URL (default: local trust-auth server). Where none is
reachable they are skipped with the reason, except under CI (CI=true), where they must run.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

import cases.core.models  # noqa: F401  (registers every table)
from cases.core import db
from cases.core.db import Base, make_engine
from cases.core.settings import get_settings

TEST_PORTAL_KEY = "test-portal-key-0123456789abcdef0123456789"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_STARTED = pytest.StashKey[float]()


def _admin_url() -> str:
    url = make_url(os.environ.get("CASEWARD_TEST_POSTGRES_URL", DEFAULT_PG))
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of its own (its URL), dropped afterwards."""
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def reset_caches() -> None:
    """Forget cached settings and engines, so the next read sees this test's environment."""
    get_settings.cache_clear()
    db.dispose_engines()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own SQLite file, mail folder and no stray CASEWARD_* values.

    Tests run in simulation mode, as their cases live at simulated times (``T0`` in 2026),
    their leads are typed names and their e-mail settings placeholders; a test of production
    behaviour uses ``production``.
    """
    for name in list(os.environ):
        if name.startswith("CASEWARD_") and name != "CASEWARD_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.setenv("CASEWARD_SIMULATION", "true")
    # a key of its own, so that a test may leave simulation (where one is required)
    monkeypatch.setenv("CASEWARD_PORTAL__SECRET_KEY", TEST_PORTAL_KEY)
    monkeypatch.setenv("CASEWARD_DATABASE_URL", f"sqlite:///{tmp_path / 'caseward.db'}")
    monkeypatch.setenv("CASEWARD_EMAIL__MAIL_DIR", str(tmp_path / "mail"))
    reset_caches()
    yield tmp_path
    reset_caches()


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production mode: real time, identities from the system, leads required."""
    monkeypatch.setenv("CASEWARD_SIMULATION", "false")
    reset_caches()


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped at the end."""
    admin_url = _admin_url()
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"PostgreSQL is required under CI: {exc}") from exc
        pytest.skip(f"PostgreSQL not reachable at {admin_url}: {type(exc).__name__}")
    name = f"caseward_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


def _wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(
    request: pytest.FixtureRequest, isolated_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """An empty Caseward database on each backend; the CLI in this test uses it too."""
    if request.param == "sqlite":
        url = f"sqlite:///{isolated_settings / 'caseward.db'}"
        created = make_engine(url)
        Base.metadata.create_all(created)
    else:
        url = request.getfixturevalue("pg_database")
        created = make_engine(url)
        _wipe(created)
    monkeypatch.setenv("CASEWARD_DATABASE_URL", url)
    reset_caches()
    yield created
    created.dispose()
    reset_caches()


@pytest.fixture
def sqlite_engine(isolated_settings: Path) -> Iterator[Engine]:
    """An empty Caseward database on SQLite only."""
    created = make_engine(f"sqlite:///{isolated_settings / 'caseward.db'}")
    Base.metadata.create_all(created)
    yield created
    created.dispose()


@pytest.fixture
def pg_engine(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An empty Caseward database on PostgreSQL only."""
    created = make_engine(pg_database)
    _wipe(created)
    monkeypatch.setenv("CASEWARD_DATABASE_URL", pg_database)
    reset_caches()
    yield created
    created.dispose()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.time()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The figures of the fault-injection runs of this session (tests/test_fault_injection.py)."""
    from tests.fault_injection import FIGURES, summary_line

    started = config.stash.get(_STARTED, 0.0)
    for path in sorted(FIGURES.glob("*.json")):
        if path.stat().st_mtime >= started:
            terminalreporter.write_line(summary_line(json.loads(path.read_text())))
