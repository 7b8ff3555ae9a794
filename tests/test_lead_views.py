"""What a lead reads outside the terminal: the case artifact, the daily report, the next step.

The markdown is rendered from the same read model the Prefect artifacts and forms use; no
Prefect server is needed to check its content.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from cases.core.db import session_scope
from cases.core.enums import Severity
from cases.lifecycle import briefs, escalation, queries, service
from caseward.cli.main import main
from flows import _markdown
from tests import factories as f
from tests.factories import T0, TIMES, days

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def _page(engine: Engine, case_id: int) -> str:
    with session_scope(engine) as session:
        return _markdown.render("case", c=briefs.case_brief(session, case_id=case_id))


def test_the_case_artifact_shows_evidence_actions_and_dates(engine: Engine) -> None:
    case_id = f.case_in(engine, "enforcement_due", severity=Severity.HIGH)

    page = _page(engine, case_id)

    assert "Spam reports per 1000 posts | 7\\.50" in page  # evidence, labelled
    assert "| ban app | app" in page and "| planned |" in page
    assert "**waiting for a lead**" in page and "Impact if applied" in page
    assert "the deadline of " in page and not ISO_TIME.search(page)  # dates, not ISO stamps
    assert "passed without the requested changes" in page  # reasons are not cut off


def test_hostile_developer_text_cannot_become_markdown(engine: Engine) -> None:
    case_id = f.case_in(engine, "opened")
    with session_scope(engine) as session:
        app = service.get_or_raise(session, case_id=case_id).apps[0]
        app.name = "[click](https://evil.example) ![t](https://evil.example/t.png) <b>x</b>\n# H"

    page = _page(engine, case_id)

    assert "](https://" not in page and "<b>" not in page and "\n# H" not in page
    assert "\\[click\\]\\(https\\://evil\\.example\\)" in page


def test_the_daily_report_lists_waiting_decisions_and_counts_declined_actions(
    engine: Engine,
) -> None:
    waiting = f.case_in(engine, "enforcement_due", severity=Severity.HIGH)
    declined = f.case_in(engine, "enforcement_due", severity=Severity.HIGH)
    appealed = f.case_in(engine, "appealed")
    with session_scope(engine) as session:
        escalation.decline_enforcement(
            session, case_id=declined, actor="lead-ann", reason="fixed late", now=TIMES["enforce"]
        )
        report = queries.daily_report(session, now=TIMES["decide"])

    assert [(w["case_id"], w["kind"]) for w in report["waiting"]] == [
        (waiting, "approve-enforcement"),
        (appealed, "review-appeal"),
    ]
    statuses = {(a["action"], a["status"]) for a in report["actions"]}
    assert ("ban_app", "declined") in statuses
    assert ("ban_app", "planned") in statuses  # the one still waiting, not the declined one


def test_approving_says_when_the_actions_are_applied(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, "enforcement_due", severity=Severity.HIGH)

    code = main(
        ["--now", (T0 + days(47)).isoformat(), "cases", "approve-enforcement", str(case_id),
         "--reason", "ban fits"]
    )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0
    assert "next: ban app x1 will be applied by the next advance-cases run" in out
    assert "caseward advance" in out
