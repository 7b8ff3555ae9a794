"""What a lead reads in an 80-column terminal, and who the CLI records as acting.

``cases list`` and ``cases show`` are compared with stored snapshots (tests/snapshots/; set
UPDATE_SNAPSHOTS=1 to rewrite them after a deliberate change) and checked line by
line: nothing wider than 80 columns, nothing a lead needs cut.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import Policy, Severity
from cases.core.models import App, Appeal, CaseEvent, Developer
from cases.core.schemas import CaseCreate
from cases.lifecycle import escalation, operations, service, write
from cases.lifecycle.states import OP_WORDS, Op
from caseward.cli import common
from caseward.cli.main import main
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import T0, days

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = T0 + days(52)

# evidence as the detectors write it (cases/detection/*.py), trimmed to a few rows
RATE_EVIDENCE: dict[str, Any] = {
    "summary": "3 apps of one party: together above one app's limit in 8 hours (peak 2.9x)",
    "near_limit_share": 0.8,
    "min_hours": 3,
    "hours_over_limit": 8,
    "peak_times_limit": 2.892,
    "hours": [
        {
            "hour": f"2026-11-04T{h:02d}:00:00Z",
            "combined_requests": 2837 + h,
            "one_app_limit": 1000,
            "times_limit": 2.84,
            "apps": [
                {
                    "app_id": f"a-rl-{n}",
                    "requests": 940 + n,
                    "own_limit": 1000,
                    "share": 0.33,
                    "rate_limited": 15 * (n % 2),
                }
                for n in (1, 2, 3)
            ],
        }
        for h in range(8, 18)
    ],
    "handoffs_total": 0,
    "handoffs": [],
}
DUP_EVIDENCE: dict[str, Any] = {
    "summary": "3 apps of 3 linked accounts share a service host",
    "apps": [
        {"app_id": f"a-dup-{n}", "developer_id": f"d-dup-{n}", "name": f"Brand Monitor {n}",
         "description": "Monitor mentions for brands", "website": "https://luxilo.com",
         "callback_urls": "", "created_at": "2026-06-30T00:00:00Z", "environment_label": None}
        for n in (1, 2, 3)
    ],
    "links": [{"apps": ["a-dup-1", "a-dup-2"], "shared_hosts": ["luxilo.com"],
               "name_similarity": 0.48, "score": 1.0}],
    "links_total": 1,
    "thresholds": {"name_similarity": 0.88, "description_similarity": 0.9},
    "exception": "dev/staging/prod exception does not apply: the apps span several accounts",
}  # fmt: skip


def _subjects(session: Any, prefix: str, n: int) -> tuple[list[str], list[str]]:
    devs, apps = [], []
    for i in range(1, n + 1):
        dev = Developer(id=f"d-{prefix}-{i}", handle=f"{prefix}{i}", email=f"{prefix}{i}@x.org",
                        created_at=T0)  # fmt: skip
        app = App(id=f"a-{prefix}-{i}", developer_id=dev.id, name=f"App {prefix} {i}",
                  description="", website="", callback_urls="", created_at=T0,
                  rate_limit_per_hour=None)  # fmt: skip
        session.add_all([dev, app])
        devs.append(dev.id)
        apps.append(app.id)
    session.flush()
    return apps, devs


def _open(engine: Engine, policy: Policy, prefix: str, n: int, severity: Severity,
          evidence: dict[str, Any], reason: str) -> int:  # fmt: skip
    with session_scope(engine) as session:
        apps, devs = _subjects(session, prefix, n)
        case = service.open_case(
            session,
            case_in=CaseCreate(policy=policy, app_ids=apps, developer_ids=devs, reason=reason,
                               severity=severity, evidence=evidence, source="detection"),
            actor=write.DETECTOR,
            now=T0,
        )  # fmt: skip
        return case.id


def _to_changes_requested(engine: Engine, case_id: int) -> None:
    with session_scope(engine) as session:
        operations.confirm(session, case_id=case_id, actor="lead-ann", reason="seen", now=T0)
        operations.send_outreach(session, case_id=case_id, now=T0)
    f.deliver_case(engine, case_id, now=T0)
    with session_scope(engine) as session:
        operations.request_changes(
            session, case_id=case_id, actor=write.SYSTEM, reason="no answer", now=T0 + days(15)
        )
    f.deliver_case(engine, case_id, now=T0 + days(15))


@pytest.fixture
def lead_desk(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Three cases a lead meets: one waiting for approval, one with a compliance report to
    check (assigned), one just opened; the terminal is 80 columns wide."""
    monkeypatch.setenv("CASEWARD_LEADS", '["lead-ann", "lead-bob"]')
    reset_caches()
    dup = _open(engine, Policy.DUPLICATE_APPS, "dup", 3, Severity.HIGH, DUP_EVIDENCE,
                "Duplicate apps: 3 apps of 3 linked accounts share a service host")  # fmt: skip
    rate = _open(engine, Policy.RATE_LIMIT_CIRCUMVENTION, "rl", 3, Severity.MEDIUM,
                 RATE_EVIDENCE, "Rate-limit circumvention: 3 apps of one party")  # fmt: skip
    spam = _open(engine, Policy.SPAM, "sp", 1, Severity.LOW, {"summary": "12 spam reports"},
                 "Spam: 12 reports on 400 posts")  # fmt: skip
    for case_id in (dup, rate):
        _to_changes_requested(engine, case_id)
    with session_scope(engine) as session:
        escalation.escalate(session, case_id=dup, now=T0 + days(46))
        operations.report_compliance(
            session, case_id=rate, actor="developer", statement="one app now", now=T0 + days(20)
        )
        operations.assign(session, case_id=rate, actor="lead-ann", assignee="lead-bob", now=NOW)
    width = common.out.width
    common.out.width = 80
    yield {"dup": dup, "rate": rate, "spam": spam}
    common.out.width = width


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--now", NOW.isoformat(), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def matches_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from {path}"


def readable_at_80(text: str, *, json_values: bool = False) -> None:
    """Every line fits 80 columns, nothing is cut short, no raw JSON (except where the
    value is JSON, as an environment variable takes it)."""
    for line in text.splitlines():
        assert len(line) <= 80, line
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
    for cut in ("…\n", *(() if json_values else ('{"', '": '))):
        assert cut not in text


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_cases_list_at_80_columns(
    lead_desk: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "cases", "list")
    assert code == 0, err
    readable_at_80(out)
    needed = ["enforcement_due", "compliance_reported", "rate_limit_circumvention", "lead-bob"]
    needed += ["52d", "3 apps of 3 linked accounts share a service host"]
    for word in needed:
        assert word in " ".join(out.split()), word
    matches_snapshot("cases-list-80", out)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_cases_list_filters(lead_desk: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    desk = lead_desk
    assert ids_of(run(capsys, "cases", "list", "--json")) == [
        desk["dup"],
        desk["rate"],
        desk["spam"],
    ]
    assert ids_of(run(capsys, "cases", "list", "--assignee", "lead-bob", "--json")) == [
        desk["rate"]
    ]
    assert ids_of(run(capsys, "--actor", "lead-bob", "cases", "list", "--mine", "--json")) == [
        desk["rate"]
    ]
    assert ids_of(run(capsys, "cases", "list", "--severity", "high", "--json")) == [desk["dup"]]
    # waiting for a lead: the approval and the compliance report, not the new case
    assert ids_of(run(capsys, "cases", "list", "--needs-decision", "--json")) == [
        desk["dup"],
        desk["rate"],
    ]


def ids_of(result: tuple[int, str, str]) -> list[int]:
    code, out, err = result
    assert code == 0, err
    return [c["id"] for c in json.loads(out)]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_cases_show_at_80_columns(
    lead_desk: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, dup, err = run(capsys, "cases", "show", str(lead_desk["dup"]))
    assert code == 0, err
    readable_at_80(dup)
    assert "Awaiting a lead's approval: ban_app x3, suspend_account x3" in dup
    assert "Requested changes" in dup and "1. Consolidate your service" in dup
    assert "name similarity 0.48" in dup  # evidence as labelled values, not JSON
    matches_snapshot("cases-show-duplicate-80", dup)
    code, rate, err = run(capsys, "cases", "show", str(lead_desk["rate"]))
    assert code == 0, err
    readable_at_80(rate)
    assert "Awaiting a lead's check of the changes the developer reports" in rate
    assert "hours (10):" in rate and "… 2 more (--json shows all)" in rate
    matches_snapshot("cases-show-rate-limit-80", rate)
    code, raw, _ = run(capsys, "cases", "show", str(lead_desk["rate"]), "--json")
    assert json.loads(raw)["evidence"] == RATE_EVIDENCE  # --json keeps the raw shape


def test_config_shows_the_variables_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    width = common.out.width
    common.out.width = 80
    try:
        code, out, err = run(capsys, "config")
    finally:
        common.out.width = width
    assert code == 0, err
    readable_at_80(out, json_values=True)
    lines = out.splitlines()
    for line in (
        "CASEWARD_DETECTION__DUPLICATE_DESCRIPTION_SIMILARITY=0.9",
        "CASEWARD_PORTAL__BASE_URL=http://127.0.0.1:8080",
        "CASEWARD_EMAIL__PLATFORM_NAME='Example Platform'",
        "CASEWARD_DEADLINES__REMINDER_OFFSETS_DAYS='[7, 1]'",
        "SENDGRID_API_KEY=",
    ):
        assert line in lines, line


def test_detect_records_the_detector_and_lists_every_case(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cases.detection.synthetic import generate

    generate(tmp_path / "snapshot", apps=300, seed=11)
    monkeypatch.setenv("USER", "someone-at-a-terminal")
    width = common.out.width
    common.out.width = 80
    try:
        code, out, err = run(capsys, "detect", "--data", str(tmp_path / "snapshot"))
    finally:
        common.out.width = width
    assert code == 0, err
    readable_at_80(out)
    with session_scope(engine) as session:
        cases = service.list_cases(session)
    assert cases and {c.opened_by for c in cases} == {"detector"}
    listed = " ".join(line for line in out.splitlines() if line.lstrip().startswith("cases "))
    assert sorted(int(n) for n in listed.replace("cases", " ").split()) == [c.id for c in cases]


def test_assign_refuses_someone_who_is_not_a_lead(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, "confirmed")
    monkeypatch.setenv("CASEWARD_LEADS", '["lead-ann", "lead-bob"]')
    reset_caches()
    code, out, err = run(capsys, "--actor", "lead-ann", "cases", "assign", str(case_id),
                         "--to", "carol")  # fmt: skip
    assert code == 2 and out == ""
    assert err == "caseward: carol is not a lead; the configured leads are lead-ann, lead-bob\n"
    code, _, err = run(capsys, "--actor", "lead-ann", "cases", "assign", str(case_id),
                       "--to", "lead-bob", "--json")  # fmt: skip
    assert code == 0, err


def test_a_lead_enters_an_appeal_for_the_developer(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, "enforced")
    with session_scope(engine) as session:
        developer = service.get_or_raise(session, case_id=case_id).developers[0].id
    monkeypatch.setenv("CASEWARD_LEADS", '["lead-ann", "lead-bob"]')
    reset_caches()
    at = (T0 + days(50)).isoformat()
    base = ["--now", at, "--actor", "lead-ann", "appeal", "submit", str(case_id)]
    code, _, err = run_at(capsys, *base, "--statement", "fixed")
    assert code == 2 and "lead-ann is a lead: name the developer" in err
    code, _, err = run_at(capsys, *base, "--statement", "fixed", "--developer", "d-nobody")
    assert code == 2 and f"developer d-nobody is not part of case {case_id}" in err
    code, _, err = run_at(capsys, *base, "--statement", "fixed", "--developer", developer)
    assert code == 0, err
    with session_scope(engine) as session:
        appeal = session.scalars(select(Appeal).where(Appeal.case_id == case_id)).one()
        event = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id.desc())
        ).first()
    assert appeal.submitted_by == f"developer:{developer}"
    assert event is not None and event.actor == f"developer:{developer}"
    assert event.data["entered_by"] == "lead-ann"


def run_at(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_refusals_read_as_english(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(OP_WORDS) == set(Op)
    case_id = f.case_in(engine, "appealed")
    code, _, err = run_at(capsys, "appeal", "submit", str(case_id), "--statement", "again")
    assert code == 2
    assert err == (
        "caseward: cannot submit an appeal on a case that is appealed; "
        "possible when it is enforced\n"
    )


def test_help_says_who_reads_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    dismiss = _help(capsys, "cases", "dismiss")
    assert "e-mails no developer" in dismiss and "developer reads" not in dismiss
    assert "e-mailed to the developers" in _help(capsys, "cases", "resolve")
    assert "notice quotes it" in _help(capsys, "cases", "approve-enforcement")


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main([*argv, "--help"])
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())
