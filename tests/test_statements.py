"""Statements of reasons built from Caseward's records: mapping, puids, personal data,
validation, reversals and the catalogue a legal team edits."""

from __future__ import annotations

import io
import json
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import Policy, Severity
from cases.core.models import App, Developer, StatementSubmission
from cases.core.settings import get_settings
from cases.enforcement import appeals
from cases.statements.automation import Automation, decision_automation, is_automated
from cases.statements.catalog import CatalogError, get_catalog
from cases.statements.export import ExportReport, export
from cases.statements.validate import problems
from tests import factories as f
from tests.conftest import reset_caches

PACKAGED = Path(__file__).resolve().parent.parent / "cases" / "statements" / "catalog.toml"


def exported(engine: Engine, **kwargs: Any) -> tuple[list[dict[str, Any]], ExportReport]:
    with session_scope(engine) as session:
        buffer = io.StringIO()
        report = export(session, out=buffer, settings=get_settings(), **kwargs)
    return [json.loads(line) for line in buffer.getvalue().splitlines()], report


def test_one_valid_statement_per_decision_and_subject(engine: Engine) -> None:
    spam = f.case_in(engine, "enforced")  # medium: the sweeper revokes the app's tokens
    dupes = f.case_in(
        engine, "enforced", policy=Policy.DUPLICATE_APPS, severity=Severity.HIGH, apps=2
    )  # high: a lead approves banning both apps and suspending the account
    f.case_in(engine, "enforcement_due")  # planned, not executed: no statement yet
    statements, report = exported(engine)

    assert (report.written, report.decisions, report.invalid) == (4, 2, [])
    assert all(problems(s) == [] for s in statements)
    by_case: dict[int, list[dict[str, Any]]] = {}
    for statement in statements:
        case_id = int(statement["puid"].split("-")[2])
        by_case.setdefault(case_id, []).append(statement)
    (revoked,) = by_case[spam]
    assert revoked["decision_provision"] == "DECISION_PROVISION_PARTIAL_TERMINATION"
    assert revoked["category"] == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert revoked["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"  # lead, then sweeper
    assert revoked["automated_detection"] == "No"  # opened by hand
    assert revoked["source_type"] == "SOURCE_VOLUNTARY"
    assert revoked["application_date"] == f.TIMES["enforce"].date().isoformat()
    assert revoked["content_date"] == f.T0.date().isoformat()  # the app's registration
    assert len(revoked["territorial_scope"]) == 27
    assert revoked["decision_ground_reference_url"].endswith("#abuse-prevention")
    assert "by 2026-12-17" in revoked["decision_facts"]  # the change deadline
    kinds = sorted(s.get("decision_provision") or s["decision_account"] for s in by_case[dupes])
    assert kinds == [
        "DECISION_ACCOUNT_SUSPENDED",
        "DECISION_PROVISION_TOTAL_TERMINATION",
        "DECISION_PROVISION_TOTAL_TERMINATION",
    ]
    assert {s["category"] for s in by_case[dupes]} == {"STATEMENT_CATEGORY_OTHER_VIOLATION_TC"}
    assert {s["automated_decision"] for s in by_case[dupes]} == {"AUTOMATED_DECISION_NOT_AUTOMATED"}

    # stable: the same decisions always give the same puids
    assert [s["puid"] for s in exported(engine)[0]] == [s["puid"] for s in statements]


def test_statements_carry_no_personal_data(engine: Engine) -> None:
    f.case_in(engine, "enforced", policy=Policy.DUPLICATE_APPS, severity=Severity.HIGH, apps=3)
    statements, _ = exported(engine)
    text = json.dumps(statements)
    with session_scope(engine) as session:
        people = session.scalars(select(Developer)).all()
        apps = session.scalars(select(App)).all()
        personal = [d.handle for d in people] + [d.email for d in people]
        personal += [d.id for d in people] + [a.name for a in apps] + [a.id for a in apps]
        personal += [a.website for a in apps]
    assert personal and [value for value in personal if value in text] == []


def test_published_facts_never_state_a_detection_threshold(engine: Engine) -> None:
    evidence = {
        "flagged_reports": 42,
        "posts": 8100,
        "reports_per_1000_posts": 5.19,
        "threshold_per_1000_posts": 2.37,  # what an abuser would stay under
        "min_reports": 13,
    }
    f.case_in(engine, "enforced", policy=Policy.SPAM, evidence=evidence)
    statements, _ = exported(engine)
    facts = " ".join(s["decision_facts"] for s in statements)
    assert "5.19 per 1,000 posts" in facts
    assert "2.37" not in facts and "threshold" not in facts.lower()


@pytest.mark.parametrize(
    ("confirmed_by", "decided_by", "expected"),
    [
        ("lead-ann", "lead-ann", Automation.NOT_AUTOMATED),  # urgent approval
        ("lead-ann", "lead-bob", Automation.NOT_AUTOMATED),  # a ban a lead approved
        ("lead-ann", "caseward", Automation.PARTIALLY),  # the sweeper after the deadline
        ("rule:spam-high", "lead-bob", Automation.PARTIALLY),  # a rule confirmed, a lead decided
        ("rule:spam-high", "caseward", Automation.FULLY),
        ("rule:spam-high", "rule:spam-ban", Automation.FULLY),
        (None, "caseward", Automation.FULLY),  # nobody confirmed it
    ],
)
def test_who_decided_makes_the_decision_automated_or_not(
    confirmed_by: str | None, decided_by: str, expected: Automation
) -> None:
    assert decision_automation(confirmed_by=confirmed_by, decided_by=decided_by) is expected
    assert not is_automated("rules-team") and is_automated("rule:x")


def test_a_detected_case_is_automated_detection(engine: Engine) -> None:
    case_id = f.case_in(engine, "enforced")
    with session_scope(engine) as session:
        from cases.core.models import Case

        session.get_one(Case, case_id).source = "detection"
    (statement,), _ = exported(engine)
    assert statement["automated_detection"] == "Yes"


def test_a_claimed_statement_keeps_its_puid_whatever_the_prefix(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = f.case_in(engine, "enforced")
    (statement,), _ = exported(engine)
    assert statement["puid"].startswith(f"caseward-case-{case_id}-action-")
    with session_scope(engine) as session:
        action_id = int(statement["puid"].rsplit("-", 1)[1])
        session.add(
            StatementSubmission(
                action_id=action_id, case_id=case_id, puid="cw-old-1", created_at=f.T0
            )
        )
    monkeypatch.setenv("CASEWARD_STATEMENTS__PUID_PREFIX", "platform_eu")
    reset_caches()
    (again,), _ = exported(engine)
    assert again["puid"] == "cw-old-1"
    f.case_in(engine, "enforced")
    assert exported(engine)[0][1]["puid"].startswith("platform_eu-case-")


def test_overturned_decisions_are_reported_as_reversed(engine: Engine) -> None:
    case_id = f.case_in(engine, "appealed")
    kept = f.case_in(engine, "closed")  # upheld
    with session_scope(engine) as session:
        appeals.decide_appeal(
            session,
            case_id=case_id,
            reviewer="lead-bob",
            overturn=True,
            reason="changes verified",
            now=f.TIMES["decide"],
        )
    statements, report = exported(engine)
    assert report.written == 2  # both statements stand: the database has no withdrawal
    (reversal,) = report.reversed
    assert reversal.case_id == case_id and reversal.case_id != kept
    assert reversal.reversed_on == f.TIMES["decide"].date().isoformat()
    assert reversal.puids == [s["puid"] for s in statements if f"-case-{case_id}-" in s["puid"]]


def test_since_limits_the_export_to_later_decisions(engine: Engine) -> None:
    f.case_in(engine, "enforced")
    assert exported(engine, since=f.TIMES["enforce"] - timedelta(days=1))[1].written == 1
    assert exported(engine, since=f.TIMES["enforce"] + timedelta(days=1))[1].written == 0


def test_invalid_statements_are_reported_with_case_and_field_and_the_rest_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spam = f.case_in(engine, "enforced")
    f.case_in(engine, "enforced", policy=Policy.RATE_LIMIT_CIRCUMVENTION)
    catalog = PACKAGED.read_text(encoding="utf-8").replace(
        "Users reported content created", "{{ 'x' * 5000 }} Users reported content created"
    )
    (tmp_path / "legal.toml").write_text(catalog, encoding="utf-8")
    monkeypatch.setenv("CASEWARD_STATEMENTS__CATALOG", str(tmp_path / "legal.toml"))
    reset_caches()
    statements, report = exported(engine)
    assert [s["category"] for s in statements] == ["STATEMENT_CATEGORY_OTHER_VIOLATION_TC"]
    (invalid,) = report.invalid
    assert (invalid.case_id, invalid.field) == (spam, "decision_facts")
    assert "more than 5,000" in invalid.message and f"case {spam}: decision_facts" in str(invalid)


def test_territorial_scope_outside_the_eea_is_refused(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    f.case_in(engine, "enforced")
    monkeypatch.setenv("CASEWARD_STATEMENTS__TERRITORIAL_SCOPE", '["de", "fr", "uk"]')
    reset_caches()
    statements, report = exported(engine)
    assert statements == [] and [i.field for i in report.invalid] == ["territorial_scope"]
    assert "UK" in report.invalid[0].message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["policies"]["spam"].update(category="STATEMENT_CATEGORY_SPAM"),
            "policies.spam: Value error, 'STATEMENT_CATEGORY_SPAM' is not a Transparency",
        ),
        (lambda c: c["policies"]["spam"].update(ground="g" * 501), "policies.spam.ground"),
        (lambda c: c["actions"].pop("ban_app"), "no entry for ban_app"),
        (lambda c: c["policies"]["spam"].update(facts="{% if %}"), "policies.spam.facts"),
        (lambda c: c["sources"].update(manual="SOURCE_USER"), "'SOURCE_USER' is not"),
    ],
)
def test_a_bad_catalogue_names_its_key(tmp_path: Path, edit: Any, message: str) -> None:
    data = tomllib.loads(PACKAGED.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "catalog.toml"
    path.write_text(_toml(data), encoding="utf-8")
    with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_catalog(path)


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the catalogue's shape (tables of strings and lists)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    text = (f"[{prefix}]\n" if prefix and lines else "") + "\n".join(lines) + "\n"
    for key, value in tables:
        text += _toml(value, f"{prefix}.{key}" if prefix else key)
    return text


def test_the_packaged_catalogue_maps_every_policy_and_action() -> None:
    catalog = get_catalog()
    assert {str(p) for p in catalog.policies} == {p.value for p in Policy}
    assert catalog.policies[Policy.SPAM].category == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert catalog.policies[Policy.DUPLICATE_APPS].category == (
        "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    )


def test_several_actions_on_one_app_make_one_statement_of_the_most_severe(
    engine: Engine,
) -> None:
    from cases.core.enums import ActionKind, ActionStatus, TargetType
    from cases.core.models import Enforcement, PlatformAction

    case_id = f.case_in(engine, "enforced")  # the app's tokens revoked
    with session_scope(engine) as session:
        decision = session.scalars(select(Enforcement).where(Enforcement.case_id == case_id)).one()
        (revoked,) = session.scalars(
            select(PlatformAction).where(PlatformAction.enforcement_id == decision.id)
        ).all()
        for kind in (ActionKind.BAN_APP, ActionKind.RESTRICT_APP):
            session.add(
                PlatformAction(
                    enforcement_id=decision.id,
                    kind=kind,
                    target_type=TargetType.APP,
                    target_id=revoked.target_id,
                    status=ActionStatus.APPLIED,
                    idempotency_key=f"extra-{kind}",
                    applied_at=revoked.applied_at,
                )
            )
        first = revoked.id
    (statement,), _ = exported(engine)
    assert statement["puid"] == f"caseward-case-{case_id}-action-{first}"
    assert statement["decision_provision"] == "DECISION_PROVISION_TOTAL_TERMINATION"
