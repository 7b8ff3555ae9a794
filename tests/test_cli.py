"""The ``caseward`` CLI in-process through ``caseward.cli.main.main``: shapes and the exit codes.

Exit codes: 0 success, 1 the operation failed, 2 bad usage / unknown id / illegal move; an
error is one line on stderr and changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cases.core.clock import parse_instant
from cases.core.db import session_scope
from cases.core.enums import CaseStatus, Policy, Severity
from cases.core.models import Case, CaseEvent, OutboxMessage
from cases.lifecycle import notices
from caseward.cli.main import main
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import T0, TIMES, days

S = CaseStatus


def at(when: datetime) -> str:
    return when.isoformat()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run a ``--json`` command that must succeed; its parsed output."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def subjects(engine: Engine) -> tuple[str, str]:
    with session_scope(engine) as session:
        owner = f.developer(session)
        return f.app(session, owner=owner, requests_7d=1234).id, owner.id


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model))
            for model in (Case, CaseEvent, OutboxMessage)
        )


# --- shapes --------------------------------------------------------------------------------


def test_open_list_show_json_shapes(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    app_id, dev_id = subjects(engine)
    opened = ok(
        capsys, "--now", at(T0), "--actor", "lead-ann", "cases", "open", "--policy", "spam",
        "--app", app_id, "--developer", dev_id, "--reason", "reported by support",
        "--severity", "high", "--evidence", "200 identical DMs",
    )  # fmt: skip
    assert opened["status"] == "opened"
    assert (opened["app_ids"], opened["developer_ids"]) == ([app_id], [dev_id])
    assert (opened["severity"], opened["opened_by"]) == ("high", "lead-ann")
    assert parse_instant(opened["created_at"]) == T0
    assert opened["evidence"]["notes"][0]["note"] == "200 identical DMs"

    rows = ok(capsys, "cases", "list")
    assert len(rows) == 1
    assert {"id", "policy", "status", "developer_ids", "app_ids", "deadline"} <= set(rows[0])
    assert rows[0]["id"] == opened["id"] and rows[0]["deadline"] is None
    assert ok(capsys, "cases", "list", "--status", "confirmed") == []
    assert ok(capsys, "cases", "list", "--policy", "spam", "--status", "opened") == rows
    assert ok(capsys, "cases", "list", "--policy", "duplicate_apps") == []

    later = T0 + days(1)
    ok(capsys, "--now", at(later), "--actor", "lead-ann", "cases", "confirm", str(opened["id"]),
       "--reason", "clear spam")  # fmt: skip
    shown = ok(capsys, "cases", "show", str(opened["id"]))
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds == ["open", "evidence_refreshed", "confirm"]
    assert [e["id"] for e in shown["events"]] == sorted(e["id"] for e in shown["events"])
    assert [parse_instant(e["at"]) for e in shown["events"]] == [T0, T0, later]  # global --now
    assert shown["events"][-1]["actor"] == "lead-ann"
    assert shown["status"] == "confirmed"
    assert parse_instant(shown["status_changed_at"]) == later
    assert {"change_requests", "enforcement", "appeal"} <= set(shown)


def test_human_output_is_not_json(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    case_id = f.case_in(engine, S.OPENED)
    code, out, _ = run(capsys, "cases", "show", str(case_id))
    assert code == 0 and f"Case {case_id}" in out and "Timeline (1 event)" in out
    code, out, _ = run(capsys, "cases", "list")
    assert code == 0 and "1 case(s)" in out


def test_every_decision_command(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    def decide(when: datetime, *argv: str, actor: str = "lead-ann") -> Any:
        return ok(capsys, "--now", at(when), "--actor", actor, *argv)

    # triage, outreach, a request with a lead's own changes, one extension, resolution
    first = f.case_in(engine, S.OPENED)
    assert decide(T0, "cases", "confirm", str(first), "--reason", "r")["status"] == "confirmed"
    advanced = decide(T0, "advance")
    assert advanced["send-outreach"] == {"done": [first], "failed": {}}
    f.deliver_pending(engine, now=T0)
    assert decide(T0 + days(1), "cases", "acknowledge", str(first), "--statement", "on it",
                  actor="dev")["status"] == "outreach_sent"  # fmt: skip
    requested = decide(T0 + days(2), "cases", "request-changes", str(first), "--reason", "now",
                       "--change", "limit posts per hour")  # fmt: skip
    assert requested["status"] == "changes_requested" and requested["deadline"] is None
    f.deliver_pending(engine, now=T0 + days(2))
    extended = decide(T0 + days(3), "cases", "extend", str(first), "--reason", "holiday",
                      "--days", "5")  # fmt: skip
    assert parse_instant(extended["deadline"]) == T0 + days(2 + 30 + 5)
    assert extended["extension_granted"] is True
    assert decide(T0 + days(4), "cases", "report-compliance", str(first), "--statement", "done",
                  actor="dev")["status"] == "compliance_reported"  # fmt: skip
    rejected = decide(T0 + days(5), "cases", "reject-compliance", str(first), "--reason", "no")
    assert rejected["status"] == "changes_requested"
    decide(T0 + days(6), "cases", "report-compliance", str(first), "--statement", "now", actor="d")
    resolved = decide(T0 + days(7), "cases", "resolve", str(first), "--reason", "verified")
    assert (resolved["status"], resolved["outcome"]) == ("resolved", "resolved")

    second = f.case_in(engine, S.CONFIRMED)
    dismissed = decide(T0, "cases", "dismiss", str(second), "--reason", "false positive")
    assert (dismissed["status"], dismissed["outcome"]) == ("dismissed", "dismissed")

    # manual evidence, urgent enforcement, a blocked notice, an appeal overturned
    third = f.case_in(engine, S.CONFIRMED, evidence={})
    noted = decide(T0, "cases", "add-evidence", str(third), "--note", "200 spam DMs")
    assert noted["evidence"]["notes"][0]["note"] == "200 spam DMs"
    urgent = decide(T0, "cases", "approve-enforcement", str(third), "--reason", "spam wave")
    assert (urgent["status"], urgent["urgent"]) == ("enforcement_due", True)
    assert decide(T0, "advance")["enforce"] == {"done": [third], "failed": {}}
    with session_scope(engine) as session:
        notices.delivery_failed(session, case_id=third, outbox_id=0, error="bounce", now=T0)
    unblocked = decide(T0, "cases", "unblock-delivery", str(third), "--reason", "new address")
    assert unblocked["delivery_blocked"] is False
    f.deliver_pending(engine, now=T0)
    appealed = decide(T0 + days(1), "appeal", "submit", str(third), "--statement", "fixed",
                      actor="dev")  # fmt: skip
    assert appealed["status"] == "appealed"
    overturned = decide(T0 + days(2), "appeal", "decide", str(third), "--overturn", "--reason",
                        "fixed", actor="lead-bob")  # fmt: skip
    assert (overturned["status"], overturned["outcome"]) == ("closed", "overturned")

    fourth = f.case_in(engine, S.APPEALED)
    upheld = decide(TIMES["decide"], "appeal", "decide", str(fourth), "--uphold", "--reason", "r",
                    actor="lead-bob")  # fmt: skip
    assert (upheld["status"], upheld["outcome"]) == ("closed", "upheld")


def test_apps_show_json(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    case_id = f.case_in(engine, S.ENFORCED)
    with session_scope(engine) as session:
        from cases.lifecycle import service

        app_id = service.get_or_raise(session, case_id=case_id).apps[0].id
    shown = ok(capsys, "apps", "show", app_id)
    assert (shown["id"], shown["status"], shown["developer_status"]) == (
        app_id,
        "token_revoked",
        "active",
    )
    assert [c["id"] for c in shown["cases"]] == [case_id]
    assert shown["cases"][0]["status"] == "enforced"


def test_config_json_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.very-secret-key")
    monkeypatch.setenv("CASEWARD_PLATFORM__API_TOKEN", "platform-secret-token")
    monkeypatch.setenv(
        "CASEWARD_DATABASE_URL", "postgresql+psycopg://caseward:pg-secret-pw@db.internal:5432/cw"
    )
    monkeypatch.setenv("CASEWARD_DEADLINES__CHANGE_DAYS", "21")
    reset_caches()
    code, out, err = run(capsys, "config", "--json")
    assert code == 0, err
    for secret in ("SG.very-secret-key", "platform-secret-token", "pg-secret-pw"):
        assert secret not in out
    values = json.loads(out)
    assert values["database_url"].startswith("postgresql+psycopg://caseward:***@db.internal")
    assert values["deadlines"]["change_days"] == 21
    code, out, _ = run(capsys, "config")
    assert code == 0 and "pg-secret-pw" not in out and "SG.very-secret-key" not in out


def test_advance_dry_run_counts_and_changes_nothing(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    for status in (S.CONFIRMED, S.CONFIRMED, S.OUTREACH_SENT, S.CHANGES_REQUESTED):
        f.case_in(engine, status)
    before = counts(engine)
    due = ok(capsys, "--now", at(TIMES["enforce"]), "advance", "--dry-run")
    assert due["send-outreach"] == 2
    assert due["request-changes"] == 1
    assert due["expire-deadlines"] == 1
    assert set(due) == {"send-outreach", "request-changes", "send-reminders",
                        "expire-deadlines", "enforce", "close-appeal-windows"}  # fmt: skip
    assert counts(engine) == before


def test_approve_enforcement_dry_run_previews_impact(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(
        engine, S.ENFORCEMENT_DUE, severity=Severity.HIGH, policy=Policy.DUPLICATE_APPS, apps=2
    )
    with session_scope(engine) as session:
        from cases.lifecycle import service

        case = service.get_or_raise(session, case_id=case_id)
        app_ids, dev_id = sorted(a.id for a in case.apps), case.developers[0].id
        other = f.app(session, owner=case.developers[0], requests_7d=50).id  # not in the case
    before = f.db_state(engine, case_id)
    impact = ok(capsys, "cases", "approve-enforcement", str(case_id), "--reason", "r", "--dry-run")
    assert impact["app_ids"] == sorted([*app_ids, other])  # the suspended account's apps too
    assert impact["account_ids"] == [dev_id]
    assert impact["requests_7d"] == 1000 * 2 + 50
    assert impact["requires_approval"] is True
    assert {(a["kind"], a["target_id"]) for a in impact["actions"]} == {
        *(("ban_app", a) for a in app_ids),
        ("suspend_account", dev_id),
    }
    assert f.db_state(engine, case_id) == before
    code, out, _ = run(capsys, "cases", "approve-enforcement", str(case_id), "--reason", "r",
                       "--dry-run")  # fmt: skip
    assert code == 0 and "requests in the last 7 days on those apps: 2,050" in out
    assert f.db_state(engine, case_id) == before


def test_init_twice_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init")
    assert code == 0 and "migrated empty -> " in err
    code, _, err = run(capsys, "init")
    assert code == 0 and "is up to date" in err
    assert ok(capsys, "cases", "list") == []


def test_an_uninitialised_database_says_to_run_init(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "cases", "list")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "run `caseward init` first" in err


# --- errors: one line on stderr, exit 2, nothing changed -----------------------------------

# fmt: off
ERRORS: dict[str, list[str]] = {
    "unknown id": ["cases", "confirm", "999", "--reason", "r"],
    "unknown id show": ["cases", "show", "999"],
    "unknown app": ["apps", "show", "nope"],
    "illegal transition": ["cases", "resolve", "{case}", "--reason", "r"],
    "illegal appeal": ["appeal", "submit", "{case}", "--statement", "s"],
    "guard": ["cases", "approve-enforcement", "{bare}", "--reason", "r"],
    "bad --now": ["--now", "next tuesday", "cases", "confirm", "{case}", "--reason", "r"],
    "bad --now on a read": ["--now", "2026-13-45", "cases", "list"],
    "unknown --policy": [
        "cases",
        "open",
        "--policy",
        "phishing",
        "--app",
        "{app}",
        "--developer",
        "{dev}",
        "--reason",
        "r",
    ],
    "unknown subject": [
        "cases",
        "open",
        "--policy",
        "spam",
        "--app",
        "a-none",
        "--developer",
        "{dev}",
        "--reason",
        "r",
    ],
    "uphold and overturn": [
        "appeal",
        "decide",
        "{case}",
        "--uphold",
        "--overturn",
        "--reason",
        "r",
    ],
    "neither uphold nor overturn": ["appeal", "decide", "{case}", "--reason", "r"],
    "missing --reason": ["cases", "confirm", "{case}"],
    "blank --reason": ["cases", "confirm", "{case}", "--reason", "  "],
    "case id not a number": ["cases", "confirm", "first", "--reason", "r"],
    "unknown --status": ["cases", "list", "--status", "pending"],
    "unknown command": ["cases", "escalate", "{case}"],
}
# fmt: on


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_exit_2_with_one_line_and_change_nothing(
    engine: Engine, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    case_id = f.case_in(engine, S.OPENED)
    bare = f.case_in(engine, S.CONFIRMED, evidence={})
    app_id, dev_id = subjects(engine)
    argv = [a.format(case=case_id, bare=bare, app=app_id, dev=dev_id) for a in ERRORS[name]]
    before = (counts(engine), f.db_state(engine, case_id), f.db_state(engine, bare))
    code, out, err = run(capsys, "--actor", "lead-ann", *argv)
    assert code == 2, (out, err)
    assert out == ""
    assert err.startswith("caseward: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert (counts(engine), f.db_state(engine, case_id), f.db_state(engine, bare)) == before


def test_a_failing_advance_exits_1_and_reports_the_case(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED, evidence={})  # escalation needs evidence
    code, out, err = run(capsys, "--now", at(TIMES["enforce"]), "advance", "--json")
    assert code == 1
    assert json.loads(out)["expire-deadlines"]["failed"].keys() == {str(case_id)}
    assert f"failed case {case_id}: GuardFailed" in err
