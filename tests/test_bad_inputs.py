"""Every bad input ends in a located line on stderr, exit 1 or 2, nothing changed, and never a
traceback; what was accepted and must not be is refused; ``oob`` callbacks are accepted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cases.core.db import Base, get_engine, session_scope
from cases.core.enums import CaseStatus
from cases.core.models import App, Case, Developer
from caseward.cli.main import main
from tests import factories as f
from tests.conftest import reset_caches
from tests.detection_fixtures import SnapshotBuilder
from tests.test_import_snapshot import base

Edit = Callable[[SnapshotBuilder], None]


@pytest.fixture
def db() -> Engine:
    engine = get_engine()
    Base.metadata.create_all(engine)
    return engine


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(m)) or 0 for m in (App, Developer, Case)
        )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def imported(capsys: pytest.CaptureFixture[str], folder: Path) -> tuple[int, list[str]]:
    """Run ``caseward import``; its exit code and stderr lines (each must be one problem
    located as file:line:column, or the final summary)."""
    code, _, err = run(capsys, "--now", "2026-11-10T00:00:00Z", "import", "--data", str(folder))
    lines = err.splitlines()
    assert "Traceback" not in err
    for line in lines:
        assert line.startswith(("caseward: ", *(f"{n}.csv:" for n in SnapshotBuilder().rows))), line
    return code, lines


def raw(folder: Path, name: str, change: Callable[[list[bytes]], None]) -> None:
    path = folder / f"{name}.csv"
    lines = path.read_bytes().split(b"\n")
    change(lines)
    path.write_bytes(b"\n".join(lines))


def set_cell(row: int, column: int, value: Any, table: str = "apps") -> Edit:
    return lambda b: b.rows[table][row].__setitem__(column, value)


REFUSED: dict[str, tuple[Edit | None, Callable[[Path], None] | None, str]] = {
    "a NUL byte": (
        set_cell(0, 2, "Weather\x00Relay"),
        None,
        "apps.csv:2:name: contains a NUL byte",
    ),
    "invalid UTF-8 in a row": (
        None,
        lambda f: raw(f, "apps", lambda ls: ls.__setitem__(1, ls[1][:5] + b"\xff" + ls[1][5:])),
        "apps.csv:2:",
    ),
    "invalid UTF-8 in the header": (
        None,
        lambda f: raw(f, "apps", lambda ls: ls.__setitem__(0, b"\xff" + ls[0])),
        "apps.csv:1:-: header row is not UTF-8 (byte 1)",
    ),
    "a 12 MB field": (
        set_cell(0, 3, "x" * 12_000_000),
        None,
        "apps.csv:2:-: Maximum line size of 10000000 bytes exceeded",
    ),
    "a 3 MB app name": (
        set_cell(0, 2, "N" * 3_000_000),
        None,
        "apps.csv:2:name: is longer than 500 characters (got 3,000,000)",
    ),
    "an id with spaces around it": (
        set_cell(1, 0, " a-1 "),
        None,
        "apps.csv:3:app_id: has spaces around it: ids are compared exactly (got ' a-1 ')",
    ),
    "a UTC offset beyond 18 hours": (
        set_cell(0, 6, "2025-02-01T00:00:00+23:00"),
        None,
        "apps.csv:2:created_at: not an ISO 8601 timestamp with offset or Z",
    ),
    "a non-ASCII e-mail domain": (
        set_cell(0, 2, "dev@bücher.example", "developers"),
        None,
        "developers.csv:2:email: not an ASCII e-mail address",
    ),
    "a special-use e-mail domain": (
        set_cell(0, 2, "dev@mail.test", "developers"),
        None,
        "developers.csv:2:email: at a special-use domain, which receives no e-mail",
    ),
    "a rate limit no registry column holds": (
        set_cell(1, 7, 10**12),
        None,
        "apps.csv:3:rate_limit_per_hour: not an integer from 1 to 2,147,483,647",
    ),
    "a column with no name": (
        None,
        lambda f: raw(f, "reports", lambda ls: [ls.__setitem__(i, ls[i] + b",") for i in (0, 1)]),
        "reports.csv:1:-: column 5 has no name",
    ),
    "a column empty in every row": (
        lambda b: [row.__setitem__(2, "") for row in b.rows["apps"]],
        None,
        "apps.csv:2:name: is empty",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_snapshot_values_are_located_and_change_nothing(
    db: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    edit, after, expected = REFUSED[name]
    builder = base()
    if edit is not None:
        edit(builder)
    folder = builder.write(tmp_path / "snapshot")
    if after is not None:
        after(folder)
    code, lines = imported(capsys, folder)
    assert code == 1
    assert any(line.startswith(expected) for line in lines), lines
    assert all(len(line) < 600 for line in lines)  # no dump of the query or the value
    assert counts(db) == (0, 0, 0)


def test_the_field_size_limit_is_configurable(
    db: Engine,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builder = base()
    builder.rows["apps"][0][3] = "d" * 150
    folder = builder.write(tmp_path / "snapshot")
    assert imported(capsys, folder)[0] == 0
    monkeypatch.setenv("CASEWARD_DETECTION__MAX_FIELD_CHARS", "100")
    reset_caches()
    code, lines = imported(capsys, folder)
    assert code == 1
    assert "apps.csv:2:description: is longer than 100 characters (got 150)" in lines


def test_offsets_up_to_18_hours_and_oob_callbacks_are_accepted(
    db: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    builder = base()
    builder.rows["apps"][0][6] = "2025-02-01T00:00:00-18:00"
    builder.rows["apps"][0][5] = "oob https://wx.io/cb"
    builder.rows["apps"][1][5] = "oob"
    code, lines = imported(capsys, builder.write(tmp_path / "snapshot"))
    assert code == 0, lines
    with session_scope(db) as session:
        assert session.get_one(App, "a-2").callback_urls == "oob"


def test_oob_names_no_service(tmp_path: Path) -> None:
    """Six unlinked accounts whose only callback is oob are not one service."""
    from cases.core.settings import DetectionSettings
    from cases.detection.run import detect_findings
    from cases.detection.snapshot import open_snapshot

    builder = SnapshotBuilder()
    for i in range(6):
        builder.developer(f"d{i}").app(f"a{i}", f"d{i}", f"Pin Client {i}", callbacks="oob")
    with open_snapshot(builder.write(tmp_path / "snapshot")) as snapshot:
        assert detect_findings(snapshot, DetectionSettings()) == []


def test_counts_whose_sum_passes_64_bits_are_stored(
    db: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    builder = base()
    for hour in range(2, 30):
        builder.usage("a-2", hour, 999_999_999_999_999_999)
    code, lines = imported(capsys, builder.write(tmp_path / "snapshot"))
    assert code == 0, lines
    with session_scope(db) as session:
        assert session.get_one(App, "a-2").requests_7d == 2**63 - 1  # saturated, not lost


# --- arguments -----------------------------------------------------------------------------

ARGUMENTS = {
    "an id past 64 bits": ["cases", "show", str(2**63)],
    "an e-mail id past 64 bits": ["outbox", "show", str(2**64)],
    "a limit past 64 bits": ["cases", "list", "--limit", "99999999999999999999"],
    "a limit in exponent notation": ["outbox", "list", "--limit", "1e20"],
    "an extension of a million years": ["cases", "extend", "1", "--reason", "r", "--days",
                                        "999999999"],
    "an offset beyond 18 hours": ["--now", "2026-11-02T09:00:00+19:00", "cases", "list"],
    "a year past 8999": ["--now", "9999-12-31T00:00:00Z", "advance"],
    "a seed past 31 bits": ["demo-data", "out", "--seed", str(10**30)],
    "a negative case filter": ["outbox", "resolve", "--resend", "--case", "-1"],
}  # fmt: skip


@pytest.mark.parametrize("name", list(ARGUMENTS))
def test_bad_arguments_are_one_line_exit_2(
    db: Engine, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    f.case_in(db, CaseStatus.CHANGES_REQUESTED)  # case 1, which the commands could change
    before = counts(db)
    code, out, err = run(capsys, "--actor", "lead-ann", *ARGUMENTS[name])
    assert (code, out) == (2, ""), err
    assert err.startswith("caseward: ") and err.count("\n") == 1, err
    assert counts(db) == before


def test_the_generated_platform_passes_the_stricter_contract(
    db: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "demo-data", str(tmp_path / "demo"), "--apps", "300")
    assert code == 0, err
    code, lines = imported(capsys, tmp_path / "demo")
    assert code == 0, lines
    assert counts(db)[0] > 250
