"""Triage rules: catalogue data that confirms or dismiss new cases after detection, as a
system identity (``rule:<name>``) with a reason naming the rule and its threshold; off by
default; ``rules check`` shows what they would do and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select

from cases.core.db import session_scope
from cases.core.errors import GuardFailed
from cases.core.models import App, Case, CaseEvent, Developer
from cases.enforcement.catalog import Catalog, TriageRule, get_catalog
from cases.leads import rules
from cases.lifecycle import operations
from caseward.cli.main import main
from tests import factories as f
from tests.conftest import reset_caches
from tests.detection_fixtures import SnapshotBuilder

NOW = "2026-11-10T09:00:00+00:00"


@pytest.fixture
def leads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Configured leads: a rule's decision must pass the write path's lead check anyway."""
    monkeypatch.setenv("CASEWARD_LEADS", '["lead-ann", "lead-bob"]')
    reset_caches()
    yield


def snapshot(folder: Path) -> Path:
    """A flood of spam (120 reports per 1,000 posts: high severity), a borderline one (2.2:
    low) and a middling one no rule decides (5.0: medium)."""
    b = SnapshotBuilder()
    for dev in ("d1", "d2", "d3"):
        b.developer(dev)
    b.app("a1", "d1", "Blaster", "Grows your audience").usage("a1", 0, 100, 0, 100)
    b.reports("a1", 12)
    b.app("a2", "d2", "Poster", "Posts for you").usage("a2", 0, 5000, 0, 5000)
    b.reports("a2", 11)
    b.app("a3", "d3", "Sharer", "Shares things").usage("a3", 0, 2000, 0, 2000)
    b.reports("a3", 10)
    return b.write(folder)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--now", NOW, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def everything(engine: Engine) -> tuple[int, ...]:
    with session_scope(engine) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Developer, App, Case, CaseEvent)
        )


def cases_by_app(engine: Engine) -> dict[str, tuple[str, list[tuple[str, str, str, Any]]]]:
    """Each case's first app, its status and its events (kind, actor, reason, data)."""
    with session_scope(engine) as session:
        found = {}
        for case in session.scalars(select(Case)):
            events = session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
            )
            first = session.execute(
                select(App.id).join(Case.apps).where(Case.id == case.id).order_by(App.id).limit(1)
            ).scalar_one()
            found[first] = (
                case.status.value,
                [(e.kind, e.actor, e.reason, e.data) for e in events],
            )
        return found


def test_rules_are_off_by_default(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "detect", "--data", str(snapshot(tmp_path / "snap")))
    assert code == 0, err
    assert {status for status, _ in cases_by_app(engine).values()} == {"opened"}


def test_rules_decide_after_detection_as_a_rule_not_a_person(
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    leads: None,
) -> None:
    monkeypatch.setenv("CASEWARD_TRIAGE__ENABLED", "true")
    reset_caches()
    folder = snapshot(tmp_path / "snap")
    code, out, err = cli(capsys, "detect", "--data", str(folder))
    assert code == 0, err
    assert "triage rules decided 2 case(s) (spam-borderline 1, spam-flood 1); 1 wait" in out

    found = cases_by_app(engine)
    assert found["a3"][0] == "opened"  # no rule matches a medium case: a lead decides
    flood_status, flood_events = found["a1"]
    assert flood_status == "confirmed"
    kind, actor, reason, data = flood_events[-1]
    assert (kind, actor) == ("confirm", "rule:spam-flood")
    assert "spam-flood" in reason and "score >= 10" in reason and "scored 120" in reason
    assert data["automated"] is True and data["rule"] == "spam-flood"
    assert data["threshold"] == "score >= 10"
    assert found["a2"][0] == "dismissed"
    assert found["a2"][1][-1][1] == "rule:spam-borderline"

    code, out, err = cli(capsys, "detect", "--data", str(folder))  # the same snapshot again
    assert code == 0, err
    again = cases_by_app(engine)
    assert again["a1"] == found["a1"]  # a case is decided once, while it is opened
    assert again["a3"] == found["a3"]
    # a finding dismissed recently (here by the rule) opens no new case for the rule to decide
    assert again["a2"] == found["a2"]
    assert "triage rules decided 0 case(s); 1 wait for a lead" in out
    assert "1 finding(s) match cases dismissed" in out


def test_rules_check_shows_what_rules_would_do_and_changes_nothing(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = snapshot(tmp_path / "snap")
    before = everything(engine)
    code, out, err = cli(capsys, "rules", "check", "--data", str(folder), "--json")
    assert code == 0, err
    checked = json.loads(out)
    assert checked["enabled"] is False
    assert checked["decided"] == {"spam-flood": 1, "spam-borderline": 1}
    assert checked["undecided"] == 1
    by_app = {v["app_ids"][0]: (v["rule"], v["decision"]) for v in checked["findings"]}
    assert by_app == {
        "a1": ("spam-flood", "confirm"),
        "a2": ("spam-borderline", "dismiss"),
        "a3": (None, None),
    }
    assert everything(engine) == before == (0, 0, 0, 0)  # not even the registry import

    code, out, _ = cli(capsys, "rules", "check", "--data", str(folder))
    assert code == 0 and "triage rules are off" in out and "spam-flood" in out
    assert everything(engine) == before


def test_nobody_can_act_as_a_rule(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    case_id = f.case_in(engine, "opened")
    before = f.db_state(engine, case_id)
    code, out, err = cli(
        capsys, "--actor", "rule:spam-flood", "cases", "confirm", str(case_id), "--reason", "r"
    )
    assert (code, out) == (2, "") and "rule:spam-flood" in err and "--actor" in err
    assert f.db_state(engine, case_id) == before


def test_a_rule_takes_only_the_triage_decisions(engine: Engine, leads: None) -> None:
    case_id = f.case_in(engine, "compliance_reported")
    with session_scope(engine) as session, pytest.raises(GuardFailed, match="not a lead"):
        operations.resolve(
            session, case_id=case_id, actor="rule:spam-flood", reason="r", now=f.TIMES["decide"]
        )


def test_rules_leave_cases_a_lead_already_decided(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEWARD_TRIAGE__ENABLED", "true")
    reset_caches()
    with session_scope(engine) as session:
        flood = f.open_case(session, evidence={"spam_reports_per_1000_posts": 50.0}).id
        session.get_one(Case, flood).score = 50.0
    opened_high = f.case_in(engine, "opened")
    with session_scope(engine) as session:
        case = session.get_one(Case, opened_high)
        case.score, case.severity = 50.0, "high"  # type: ignore[assignment]
    lead_confirmed = f.case_in(engine, "confirmed")
    before = f.db_state(engine, lead_confirmed)
    with session_scope(engine) as session:
        report = rules.triage(session, [opened_high, lead_confirmed, flood], now=f.TIMES["request"])
    assert report.decided == {"spam-flood": [opened_high]}
    assert report.waiting == [flood]  # medium severity: no rule
    assert f.db_state(engine, lead_confirmed) == before


def test_catalog_rules_are_checked_when_read() -> None:
    with pytest.raises(ValidationError, match="a confirm rule has min_score"):
        TriageRule(name="r", decision="confirm", below_score=1.0)
    with pytest.raises(ValidationError, match="a dismiss rule has below_score"):
        TriageRule(name="r", decision="dismiss", min_score=1.0, below_score=2.0)
    with pytest.raises(ValidationError):
        TriageRule(name="Not A Name", decision="dismiss", below_score=1.0)
    data = get_catalog().model_dump(mode="json")
    data["policies"]["duplicate_apps"]["triage"].append(
        {"name": "spam-flood", "decision": "dismiss", "below_score": 0.5}
    )
    with pytest.raises(ValidationError, match="unique: spam-flood"):
        Catalog.model_validate(data)


def test_the_detect_flows_run_triages_in_the_same_unit_of_work(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_detection`` (the detect flow's task) opens the cases, then the rules decide."""
    from cases.core.clock import parse_instant
    from cases.core.settings import get_settings
    from cases.detection.run import run_detection

    monkeypatch.setenv("CASEWARD_TRIAGE__ENABLED", "true")
    reset_caches()
    with session_scope(engine) as session:
        report = run_detection(
            session,
            snapshot(tmp_path / "snap"),
            settings=get_settings().detection,
            actor="detector",
            now=parse_instant(NOW),
        )
    assert report.triaged is not None and report.triaged.counts() == {
        "spam-flood": 1,
        "spam-borderline": 1,
    }
    assert sorted(s for s, _ in cases_by_app(engine).values()) == [
        "confirmed",
        "dismissed",
        "opened",
    ]
