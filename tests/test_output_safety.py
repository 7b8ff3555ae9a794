"""What Caseward prints cannot steer a terminal or leak a secret, and its demo data can reach
nobody: escape sequences and bidi overrides are neutralised in CLI output and subjects,
passwords, API keys and tokens are masked everywhere, and demo-data writes only reserved
domains."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text, update
from sqlalchemy.engine import make_url

from cases.core.db import session_scope
from cases.core.enums import CaseStatus
from cases.core.inert import inert
from cases.core.models import App
from cases.core.redact import redact
from cases.lifecycle import service
from caseward.cli.main import main
from tests import factories as f
from tests.conftest import _admin_url, reset_caches
from tests.email_fixtures import sqlite_db
from tests.test_outbox_delivery import queue, rows

__all__ = ["sqlite_db"]

HOSTILE = "Evil\x1b[31mRed\x1b]8;;http://x\x07Link\u202eTXT.exe\u2066\x9b2J"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inert_replaces_controls_and_bidi_but_keeps_lines() -> None:
    assert inert("a\x1b[2Jb\u202ec\td\ne") == "a\ufffd[2Jb\ufffdc\td\ne"


def test_cli_output_neutralises_developer_text(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, CaseStatus.OPENED)
    with session_scope(engine) as session:
        app_id = service.get_or_raise(session, case_id=case_id).apps[0].id
        session.execute(update(App).where(App.id == app_id).values(name=HOSTILE))
        service.add_evidence(session, case_id=case_id, note=HOSTILE, actor="lead-ann", now=f.T0)
    for argv in (["cases", "show", str(case_id)], ["apps", "show", app_id]):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        assert "Evil" in out and not UNSAFE.search(out), repr(out)
        assert "\ufffd" in out
    code, out, _ = run(capsys, "cases", "show", str(case_id), "--json")
    assert code == 0 and HOSTILE in json.loads(out)["evidence"]["notes"][0]["note"]  # kept


def test_error_lines_neutralise_what_was_typed(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "apps", "show", "x\x1b[2J\u202e")
    assert (code, out) == (2, "")
    assert not UNSAFE.search(err) and err.count("\n") == 1


def test_subjects_carry_no_bidi_override_or_control(sqlite_db: Engine) -> None:
    queue(sqlite_db, app_name=HOSTILE)
    (message,) = rows(sqlite_db)
    assert "Evil" in message.subject and not UNSAFE.search(message.subject), message.subject


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_percent_in_the_database_password_neither_crashes_nor_shows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"caseward_test_pct_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
    try:
        url = make_url(_admin_url()).set(database=name, password="S3cr@t%x")
        written = url.render_as_string(hide_password=False)
        assert "S3cr%40t%25x" in written  # as an operator writes it
        monkeypatch.setenv("CASEWARD_DATABASE_URL", written)  # trust auth: not checked
        reset_caches()
        code, out, err = run(capsys, "init")
        assert code == 0, err
        assert "S3cr" not in out + err and "***" in err
    finally:
        reset_caches()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_an_unreachable_database_is_one_line_without_its_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEWARD_DATABASE_URL", "postgresql://u:S3cr%40t@127.0.0.1:1/db")
    reset_caches()
    for argv in (["init"], ["cases", "list"]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (1, "")
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "S3cr" not in err


def test_tracebacks_are_masked() -> None:
    trace = (
        'File "x.py", line 1\n  connect("postgresql://caseward:pg%40pw@db/cw")\n'
        "ValueError: bad key SG.abcdefghij.klmnopqrstu for https://u:tok@api.example/x"
    )
    masked = redact(trace, ["SG.abcdefghij.klmnopqrstu", "pg@pw", "pg%40pw"])
    assert "pg%40pw" not in masked and "SG.abc" not in masked and ":tok@" not in masked
    assert masked.count("***") == 3


def test_a_crash_prints_a_masked_traceback_and_one_last_line(tmp_path: Path) -> None:
    """A bug anywhere (here a function made to raise, in a child process) shows its
    traceback for the report, with every secret of the configuration masked."""
    script = (
        "import sys\n"
        "from caseward.cli.main import main\n"
        "def boom(*a, **k): raise RuntimeError('leak SG.secret-key-123 and pw p4ss-w0rd')\n"
        "import cases.core.settings as s\n"
        "s.masked = boom\n"
        "import caseward.cli.admin_cmds as a\n"
        "a.masked = boom\n"
        "sys.exit(main(['config']))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SENDGRID_API_KEY": "SG.secret-key-123",
        "CASEWARD_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "CASEWARD_PLATFORM__API_TOKEN": "p4ss-w0rd",
        "CASEWARD_PORTAL__SECRET_KEY": "portal-key-that-signs-every-link-0123456789",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError" in done.stderr
    assert "SG.secret-key-123" not in done.stderr and "p4ss-w0rd" not in done.stderr
    assert "portal-key-that-signs" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("caseward: internal error (RuntimeError)")


# --- demo data reaches nobody ----------------------------------------------------------------

RESERVED = re.compile(
    r"(?i)(^|.*\.)(example|test|invalid|localhost)$|^(.*\.)?example\.(com|org|net)$"
    r"|^127\.0\.0\.1$"
)


def _host(url: str) -> str | None:
    found = re.match(r"(?i)^https?://([^/:?#]+)", url)
    return found.group(1).lower() if found else None


def test_demo_data_writes_only_reserved_domains(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "demo-data", str(tmp_path / "demo"), "--apps", "2000")
    assert code == 0, err
    with (tmp_path / "demo" / "developers.csv").open(newline="") as handle:
        domains = {row["email"].rpartition("@")[2] for row in csv.DictReader(handle)}
    assert domains and all(RESERVED.match(d) for d in domains), sorted(domains)[:10]
    hosts: set[str] = set()
    with (tmp_path / "demo" / "apps.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            for url in [row["website"], *row["callback_urls"].split()]:
                host = _host(url)
                if host is not None:
                    hosts.add(host)
    assert hosts and [h for h in hosts if not RESERVED.match(h)] == []
