"""Submission to a local Transparency Database: batches of 100, each puid once, retries,
refusals and credentials; and the ``caseward statements`` commands."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import Policy, Severity, SubmissionStatus
from cases.core.models import StatementSubmission
from cases.core.settings import get_settings
from cases.statements import submission
from cases.statements.client import StatementsConfigError
from caseward.cli.main import main
from tests import factories as f
from tests.conftest import reset_caches
from tests.transparency_server import TransparencyDatabase, transparency_api, transparency_db

__all__ = ["transparency_api", "transparency_db"]
NOW = f.TIMES["enforce"] + timedelta(days=1)


@pytest.fixture
def api(transparency_api: TransparencyDatabase) -> TransparencyDatabase:
    return transparency_api


def submit(engine: Engine, *, now: Any = NOW) -> submission.SubmitReport:
    return submission.submit(engine, settings=get_settings(), now=now)


def rows(engine: Engine) -> dict[str, StatementSubmission]:
    with session_scope(engine) as session:
        return {r.puid: r for r in session.scalars(select(StatementSubmission))}


def statuses(engine: Engine) -> set[SubmissionStatus]:
    return {r.status for r in rows(engine).values()}


def test_batches_of_at_most_100_and_never_twice(
    sqlite_engine: Engine, api: TransparencyDatabase
) -> None:
    for _ in range(3):  # 3 x (50 banned apps + 1 suspended account) = 153 statements
        f.case_in(
            sqlite_engine, "enforced", policy=Policy.DUPLICATE_APPS, severity=Severity.HIGH, apps=50
        )
    report = submit(sqlite_engine)
    assert (report.submitted, report.already, report.rejected, report.stopped) == (153, 0, [], None)
    assert [len(post) for post in api.posts] == [100, 53]
    stored = rows(sqlite_engine)
    assert set(stored) == set(api.stored) and len(stored) == 153
    assert {r.status for r in stored.values()} == {SubmissionStatus.SUBMITTED}
    assert all(
        r.response and r.response["uuid"] == api.stored[p]["uuid"] for p, r in stored.items()
    )
    assert all(r.submitted_at == NOW and r.attempts == 1 for r in stored.values())

    again = submit(sqlite_engine, now=NOW + timedelta(days=1))
    assert (again.submitted, again.requests) == (0, 0)
    assert max(api.created.values()) == 1


def test_a_puid_the_database_holds_already_is_checked_and_recorded(
    engine: Engine, api: TransparencyDatabase
) -> None:
    first = f.case_in(engine, "enforced")
    f.case_in(engine, "enforced")
    export_puids = sorted(p for p in _puids(engine))
    held = next(p for p in export_puids if f"-case-{first}-" in p)
    api.stored[held] = {"puid": held, "uuid": "uuid-from-before"}  # a run whose answer was lost

    report = submit(engine)
    assert (report.submitted, report.already, report.rejected) == (1, 1, [])
    assert api.gets == [held]
    assert api.created[held] == 0  # never created twice
    assert rows(engine)[held].response == {"existing": True, "uuid": "uuid-from-before"}
    assert statuses(engine) == {SubmissionStatus.SUBMITTED}


def test_an_answer_lost_after_the_database_created_the_statements(
    engine: Engine, api: TransparencyDatabase
) -> None:
    f.case_in(engine, "enforced")
    f.case_in(engine, "enforced")
    api.script = ["drop"]  # stored, then the connection closes without an answer
    report = submit(engine)
    assert (report.submitted, report.already, report.stopped) == (0, 2, None)
    assert sorted(api.gets) == sorted(api.stored)
    assert max(api.created.values()) == 1 and statuses(engine) == {SubmissionStatus.SUBMITTED}


def test_a_claim_left_by_a_crashed_run_is_checked_before_anything_is_resent(
    engine: Engine, api: TransparencyDatabase
) -> None:
    f.case_in(engine, "enforced")
    f.case_in(engine, "enforced")
    crashed_at = NOW - timedelta(hours=2)
    with session_scope(engine) as session:
        built = _built(session)
    run = submission.Run(
        engine, submission.TransparencyClient.from_settings(get_settings().statements),
        get_settings(), crashed_at, submission.SubmitReport(),
    )  # fmt: skip
    assert [b.puid for b in run.claim(built)] == [b.puid for b in built]
    accepted, lost = built
    api.stored[accepted.puid] = accepted.statement | {"uuid": "u-1"}  # it did arrive

    report = submit(engine)
    assert sorted(api.gets) == sorted([accepted.puid, lost.puid])
    assert api.posts == [[lost.puid]]  # only the one the database did not have
    assert (report.already, report.submitted) == (1, 1)
    assert {r.attempts for r in rows(engine).values()} == {1, 2}


def test_429_and_5xx_are_retried_with_backoff(engine: Engine, api: TransparencyDatabase) -> None:
    f.case_in(engine, "enforced")
    api.script = [429, 503]
    report = submit(engine)
    assert (report.submitted, report.requests, report.stopped) == (1, 3, None)
    assert len(api.posts) == 3 and statuses(engine) == {SubmissionStatus.SUBMITTED}


def test_when_the_tries_run_out_the_run_stops_and_the_next_one_sends(
    engine: Engine, api: TransparencyDatabase
) -> None:
    f.case_in(engine, "enforced")
    api.script = [500, 502, 503]
    report = submit(engine)
    assert report.stopped and "HTTP 503 after 3 tries" in report.stopped
    assert (report.submitted, report.pending) == (0, 1)
    (row,) = rows(engine).values()
    assert row.status is SubmissionStatus.PENDING and row.last_error
    assert api.stored == {}

    later = submit(engine, now=NOW + timedelta(hours=1))
    assert later.submitted == 1 and statuses(engine) == {SubmissionStatus.SUBMITTED}
    assert rows(engine)[row.puid].attempts == 2


def test_a_refused_token_stops_at_once_and_releases_the_claims(
    engine: Engine, api: TransparencyDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    f.case_in(engine, "enforced")
    monkeypatch.setenv("CASEWARD_STATEMENTS__API_TOKEN", "X|stale")
    reset_caches()
    with pytest.raises(StatementsConfigError, match=r"refused the API token \(HTTP 401\)"):
        submit(engine)
    assert len(api.posts) == 1  # no retry on 401
    assert statuses(engine) == {SubmissionStatus.PENDING}


def test_statements_the_database_refuses_are_recorded_and_the_rest_go_through(
    engine: Engine, api: TransparencyDatabase
) -> None:
    spam = f.case_in(engine, "enforced")
    dupes = f.case_in(engine, "enforced", policy=Policy.DUPLICATE_APPS, apps=2)  # 2 bans
    api.refuse_categories = {"STATEMENT_CATEGORY_SCAMS_AND_FRAUD"}
    report = submit(engine)
    assert report.submitted == 2
    (refused,) = report.rejected
    assert (refused.case_id, refused.field) == (spam, "category")
    by_case = {r.case_id: r.status for r in rows(engine).values()}
    assert by_case == {spam: SubmissionStatus.REJECTED, dupes: SubmissionStatus.SUBMITTED}
    assert [len(p) for p in api.posts] == [3, 2]  # the batch again, without the refused one

    api.refuse_categories = set()  # the catalogue (or the database) fixed: sent again
    assert submit(engine, now=NOW + timedelta(days=1)).submitted == 1
    assert statuses(engine) == {SubmissionStatus.SUBMITTED}


def test_invalid_statements_are_never_sent(
    engine: Engine, api: TransparencyDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    f.case_in(engine, "enforced")
    monkeypatch.setenv("CASEWARD_STATEMENTS__TERRITORIAL_SCOPE", '["DE", "CH"]')
    reset_caches()
    report = submit(engine)
    assert [i.field for i in report.invalid] == ["territorial_scope"]
    assert api.posts == [] and rows(engine) == {}


# --- the commands ---------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_command_writes_json_lines_and_reports_on_stderr(
    engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case_id = f.case_in(engine, "enforced")
    code, out, err = run(capsys, "statements", "export")
    assert code == 0 and "exported 1 statement(s) of 1 decision(s) to stdout" in err
    (statement,) = [json.loads(line) for line in out.splitlines()]
    assert statement["puid"].startswith(f"caseward-case-{case_id}-")

    target = tmp_path / "sor.jsonl"
    assert (
        run(capsys, "statements", "export", "--out", str(target), "--since", "2027-01-01")[0] == 0
    )
    assert target.read_text() == ""
    code, _, err = run(capsys, "statements", "export", "--since", "yesterday")
    assert code == 2 and err.startswith("caseward: --since") and len(err.splitlines()) == 1


def test_export_command_exits_1_on_invalid_statements_and_writes_the_rest(
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f.case_in(engine, "enforced")
    monkeypatch.setenv("CASEWARD_STATEMENTS__ACCOUNT_TYPE", "none")
    monkeypatch.setenv("CASEWARD_STATEMENTS__TERRITORIAL_SCOPE", '["DE", "CH"]')
    reset_caches()
    target = tmp_path / "sor.jsonl"
    code, _, err = run(capsys, "statements", "export", "--out", str(target), "--json")
    report = json.loads(err)
    assert code == 1 and report["written"] == 0
    assert [(i["field"], "CH" in i["message"]) for i in report["invalid"]] == [
        ("territorial_scope", True)
    ]
    assert target.exists()


def test_submit_and_list_commands(
    engine: Engine, api: TransparencyDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, "enforced")
    code, out, _ = run(capsys, "--now", NOW.isoformat(), "statements", "submit", "--json")
    assert code == 0 and json.loads(out)["submitted"] == 1
    code, out, _ = run(capsys, "statements", "list", "--case", str(case_id), "--json")
    (listed,) = json.loads(out)
    assert listed["status"] == "submitted" and listed["uuid"] in {
        s["uuid"] for s in api.stored.values()
    }


def test_submit_command_one_line_errors(
    engine: Engine,
    api: TransparencyDatabase,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f.case_in(engine, "enforced")
    monkeypatch.setenv("CASEWARD_STATEMENTS__API_TOKEN", "X|wrong")
    reset_caches()
    code, out, err = run(capsys, "statements", "submit")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("caseward: the Transparency Database refused the API token (HTTP 401)")
    monkeypatch.delenv("CASEWARD_STATEMENTS__API_URL")
    reset_caches()
    code, _, err = run(capsys, "statements", "submit")
    assert code == 1 and "set CASEWARD_STATEMENTS__API_URL" in err and len(err.splitlines()) == 1


def _kept(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: stored[k] for k in ("uuid", "permalink", "created_at")}


def _built(session: Any) -> list[Any]:
    from cases.statements.export import built_statements

    return list(built_statements(session, settings=get_settings()))


def _puids(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return [b.puid for b in _built(session)]
