"""Leads' decisions on many cases: filters instead of an id, a dry run that changes nothing,
``--yes`` above 50 cases, one event and the same e-mails per case as a single decision, and
refused cases reported while the others go through (exit 1)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from cases.core.db import session_scope
from cases.core.enums import CaseStatus, Policy, Severity
from cases.core.models import Case, CaseEvent, OutboxMessage
from cases.leads import bulk
from caseward.cli.main import main
from tests import factories as f
from tests.factories import TIMES, days

S = CaseStatus
LATER = TIMES["deadline"] - days(5)  # after the set-up of open cases, before their deadlines
AFTER = TIMES["decide"] + days(1)  # after the set-up of every case


def cli(
    capsys: pytest.CaptureFixture[str], *argv: str, actor: str = "lead-ann", now: datetime = LATER
) -> tuple[int, Any, str]:
    code = main(["--now", now.isoformat(), "--actor", actor, *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def everything(engine: Engine) -> tuple[object, ...]:
    """Every row a decision may write, to show that a command changed nothing."""
    with session_scope(engine) as session:
        cases = session.execute(
            select(Case.id, Case.status, Case.version, Case.assignee, Case.deadline).order_by(
                Case.id
            )
        ).all()
        events = session.scalar(select(func.count()).select_from(CaseEvent))
        mails = session.scalar(select(func.count()).select_from(OutboxMessage))
    return tuple(cases), events, mails


def statuses(engine: Engine, ids: list[int]) -> list[S]:
    with session_scope(engine) as session:
        query = select(Case.status).where(Case.id.in_(ids)).order_by(Case.id)
        return list(session.scalars(query))


def events_of(engine: Engine, kind: str) -> list[tuple[int, str, str]]:
    with session_scope(engine) as session:
        query = (
            select(CaseEvent.case_id, CaseEvent.actor, CaseEvent.reason)
            .where(CaseEvent.kind == kind)
            .order_by(CaseEvent.case_id)
        )
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def ids_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ids.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_confirm_by_ids_reports_refusals_and_decides_the_rest(
    engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    opened = [f.case_in(engine, "opened") for _ in range(3)]
    confirmed = f.case_in(engine, "confirmed")
    before = f.db_state(engine, confirmed)
    listed = ids_file(tmp_path, f"# triage list\n{opened[0]}, {confirmed}\n{opened[1]} 9999\n")

    code, done, err = cli(capsys, "cases", "confirm", "--ids-from", listed, "--reason", "triaged")

    assert code == 1, err  # a refusal makes the exit code 1 ...
    assert done["done"] == [opened[0], opened[1]]  # ... and the others still go through
    assert set(done["refused"]) == {str(confirmed), "9999"}
    assert "cannot confirm a case that is confirmed" in done["refused"][str(confirmed)]
    assert done["refused"]["9999"] == "no case with id 9999"
    assert statuses(engine, opened) == [S.CONFIRMED, S.CONFIRMED, S.OPENED]
    assert f.db_state(engine, confirmed) == before  # the refused case is untouched
    # one event per case, exactly as `cases confirm ID` writes it
    assert [e for e in events_of(engine, "confirm") if e[2] == "triaged"] == [
        (opened[0], "lead-ann", "triaged"),
        (opened[1], "lead-ann", "triaged"),
    ]


def test_a_refusal_inside_a_batch_redoes_it_case_by_case(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """``extend --status changes_requested`` selects a case already extended: the guard
    refuses it in the middle of the batch, and the cases on either side are extended."""
    ids = [f.case_in(engine, "changes_requested") for _ in range(3)]
    code, _, err = cli(capsys, "cases", "extend", str(ids[1]), "--reason", "first")
    assert code == 0, err
    before = f.db_state(engine, ids[1])

    code, done, _ = cli(
        capsys, "cases", "extend", "--status", "changes_requested", "--reason", "progress"
    )

    assert code == 1
    assert done["done"] == [ids[0], ids[2]]
    assert done["refused"] == {str(ids[1]): f"case {ids[1]} already had its one extension"}
    assert f.db_state(engine, ids[1]) == before
    # each extended case has its event and its e-mail, as a single extension has
    assert [e[0] for e in events_of(engine, "extend")] == ids
    with session_scope(engine) as session:
        mails = Counter(
            session.scalars(
                select(OutboxMessage.case_id).where(OutboxMessage.template == "extension_granted")
            )
        )
    assert mails == {ids[0]: 1, ids[1]: 1, ids[2]: 1}


def test_a_dry_run_counts_shows_and_changes_nothing(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [f.case_in(engine, "opened") for _ in range(12)]
    f.case_in(engine, "confirmed")  # not selected: confirm applies to opened cases
    before = everything(engine)

    code, shown, err = cli(
        capsys, "cases", "confirm", "--policy", "spam", "--reason", "seen", "--dry-run"
    )

    assert code == 0, err
    assert (shown["dry_run"], shown["count"], shown["applicable"]) == (True, 12, 12)
    assert shown["ids"] == ids
    assert [c["id"] for c in shown["cases"]] == ids[:10]  # the first rows
    assert everything(engine) == before

    code, out, _ = (main(["--now", LATER.isoformat(), "cases", "confirm", "--policy", "spam",
                          "--reason", "seen", "--dry-run"]), *capsys.readouterr())  # fmt: skip
    assert code == 0 and "12 case(s) match (dry run: nothing changed)" in out
    assert everything(engine) == before


def test_more_than_fifty_cases_need_yes(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    with session_scope(engine) as session:
        ids = [f.open_case(session).id for _ in range(51)]
    before = everything(engine)

    code, out, err = cli(capsys, "cases", "dismiss", "--status", "opened", "--reason", "noise")
    assert (code, out) == (2, None)
    assert "51 cases match" in err and "--yes" in err and err.count("\n") == 1
    assert everything(engine) == before

    code, _, err = cli(capsys, "cases", "dismiss", "--limit", "50", "--reason", "noise")
    assert code == 0, err  # 50 is not more than 50
    code, done, err = cli(
        capsys, "cases", "dismiss", "--status", "opened", "--reason", "x", "--yes"
    )
    assert code == 0, err
    assert done["done"] == ids[50:]
    assert set(statuses(engine, ids)) == {S.DISMISSED}


def test_filters_select_by_score_severity_policy_and_opening_time(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with session_scope(engine) as session:
        low = f.open_case(session, severity=Severity.LOW, now=f.T0)
        high = f.open_case(session, severity=Severity.HIGH, now=f.T0 + days(2))
        dupes = f.open_case(session, policy=Policy.DUPLICATE_APPS, now=f.T0 + days(3))
        ids = [low.id, high.id, dupes.id]
    with session_scope(engine) as session:
        for case_id, score in zip(ids, (2.5, 40.0, 9.0), strict=True):
            session.execute(update(Case).where(Case.id == case_id).values(score=score))

    def selected(*argv: str) -> list[int]:
        code, shown, err = cli(capsys, "cases", "confirm", *argv, "--reason", "r", "--dry-run")
        assert code == 0, err
        return list(shown["ids"])

    assert selected("--min-score", "9") == [high.id, dupes.id]
    assert selected("--severity", "high") == [high.id]
    assert selected("--policy", "duplicate_apps") == [dupes.id]
    assert selected("--opened-before", (f.T0 + days(1)).date().isoformat()) == [low.id]
    assert selected("--policy", "spam", "--min-score", "3") == [high.id]
    assert selected("--limit", "2") == [low.id, high.id]


def test_approval_by_default_takes_only_enforcements_waiting_for_one(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ban waits for approval; a restriction does not; a case still in changes_requested
    is approved urgently only when a lead asks for that status explicitly."""
    ban = f.case_in(engine, "enforcement_due", severity=Severity.HIGH)
    restriction = f.case_in(engine, "enforcement_due", severity=Severity.LOW)
    active = f.case_in(engine, "changes_requested")
    code, done, err = cli(capsys, "cases", "approve-enforcement", "--policy", "spam",
                          "--reason", "proportionate", now=AFTER)  # fmt: skip
    assert code == 0, err
    assert done["done"] == [ban]
    assert events_of(engine, "approve_enforcement") == [(ban, "lead-ann", "proportionate")]
    assert statuses(engine, [restriction, active]) == [S.ENFORCEMENT_DUE, S.CHANGES_REQUESTED]

    code, done, err = cli(capsys, "cases", "decline-enforcement", "--status", "enforcement_due",
                          "--reason", "changes made", now=AFTER)  # fmt: skip
    assert code == 0, err
    assert done["done"] == [ban, restriction]
    with session_scope(engine) as session:
        declined = session.scalars(
            select(OutboxMessage.case_id).where(OutboxMessage.template == "enforcement_declined")
        )
        assert sorted(declined) == [ban, restriction]  # e-mailed, as a single decline is


def test_assign_many_to_a_lead(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f.case_in(engine, status) for status in ("opened", "changes_requested", "closed")]
    code, done, err = cli(capsys, "cases", "assign", "--policy", "spam", "--to", "lead-bob",
                          now=AFTER)  # fmt: skip
    assert code == 0, err
    assert done["done"] == ids[:2]  # a closed case is not open: not selected
    with session_scope(engine) as session:
        assignees = session.scalars(select(Case.assignee).order_by(Case.id))
        assert list(assignees) == ["lead-bob", "lead-bob", None]


@pytest.mark.parametrize(
    "argv",
    [
        ["cases", "confirm", "--reason", "r"],  # neither an id nor a filter
        ["cases", "confirm", "1", "--policy", "spam", "--reason", "r"],  # both
        ["cases", "confirm", "--opened-before", "last week", "--reason", "r"],
        ["cases", "confirm", "--ids-from", "IDS", "--reason", "r"],  # a malformed file
        ["cases", "confirm", "--ids-from", "MISSING", "--reason", "r"],
        ["cases", "assign", "--status", "opened", "--to", "mallory"],  # not a lead
    ],
)
def test_a_selection_that_is_not_clear_changes_nothing(
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    monkeypatch.setenv("CASEWARD_LEADS", '["lead-ann", "lead-bob"]')
    from tests.conftest import reset_caches

    reset_caches()
    f.case_in(engine, "opened")
    before = everything(engine)
    bad = ids_file(tmp_path, "1\n2 x3\n")
    argv = [bad if a == "IDS" else str(tmp_path / "none") if a == "MISSING" else a for a in argv]
    code, out, err = cli(capsys, *argv)
    assert (code, out) == (2, None) and err.count("\n") == 1, err
    if "IDS" in argv:
        assert f"{bad}:2:3: expected a case id" in err
    assert everything(engine) == before


def test_only_a_lead_decides_in_bulk(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lead check is made once, before anything is selected: one line, exit 2."""
    from tests.conftest import reset_caches

    monkeypatch.setenv("CASEWARD_LEADS", '["lead-ann"]')
    reset_caches()
    f.case_in(engine, "opened")
    before = everything(engine)
    code, out, err = cli(capsys, "cases", "confirm", "--status", "opened", "--reason", "r",
                         actor="mallory")  # fmt: skip
    assert (code, out) == (2, None) and "'mallory' is not a lead" in err
    assert everything(engine) == before


def test_an_error_that_is_not_a_refusal_stops_the_run_keeping_earlier_batches(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f.case_in(engine, "opened") for _ in range(5)]
    confirm = bulk.DECISIONS["confirm"]

    def prepare(session: Any, cases: Any, inputs: bulk.DecisionInput) -> Any:
        each = confirm.prepare(session, cases, inputs)

        def act(case: Case) -> object:
            if case.id == ids[3]:
                raise RuntimeError("the database went away")
            return each(case)

        return act

    monkeypatch.setitem(
        bulk.DECISIONS, "confirm", bulk.BulkDecision(confirm.ops, confirm.default, prepare)
    )
    outcome = bulk.decide(
        engine,
        "confirm",
        ids,
        inputs=bulk.DecisionInput(actor="lead-ann", now=LATER, reason="r"),
        batch_size=2,
    )
    assert outcome.done == ids[:2]  # the first batch is committed
    assert outcome.stopped == "RuntimeError: the database went away"
    assert statuses(engine, ids) == [S.CONFIRMED, S.CONFIRMED, S.OPENED, S.OPENED, S.OPENED]
