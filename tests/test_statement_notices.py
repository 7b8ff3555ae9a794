"""Every enforcement e-mail is a statement of reasons (Article 17(3) DSA): what is restricted
and for how long, the facts, automated means, the contractual ground and the redress.

The notices are the ones the lifecycle itself stored for cases driven to enforcement through
the real services, one case per enforcement template.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import replace

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import EmailTemplate, Policy, Severity
from cases.core.models import OutboxMessage
from cases.core.settings import get_settings
from cases.email import outbox
from cases.email.render import get_renderer
from cases.statements.export import export
from cases.statements.notice import reasons_context
from tests import factories as f
from tests.conftest import reset_caches
from tests.email_fixtures import NOW, extras_for, make_case, reasons_decision, sqlite_db

__all__ = ["sqlite_db"]

EVIDENCE = {
    "flagged_reports": 42,
    "posts": 8100,
    "reports_per_1000_posts": 5.19,
    "threshold_per_1000_posts": 2.0,
}
SCOPE = {
    "restrict_app": "its API requests are limited",
    "revoke_token": "its existing OAuth tokens no longer work",
    "ban_app": "it can no longer use the API",
    "suspend_account": "the account and all of its apps can no longer use the API",
}
ENFORCED = [
    (Policy.SPAM, Severity.LOW, EmailTemplate.APP_RESTRICTED, "partly automated"),
    (Policy.SPAM, Severity.MEDIUM, EmailTemplate.TOKEN_REVOKED, "partly automated"),
    (Policy.SPAM, Severity.HIGH, EmailTemplate.APP_BANNED, "members of our team"),
    (Policy.DUPLICATE_APPS, Severity.HIGH, EmailTemplate.ACCOUNT_SUSPENDED, "members of our team"),
]


def words(body: str, *, is_html: bool) -> str:
    """A body as a reader sees it: tags gone, entities decoded, whitespace folded."""
    if is_html:
        body = html.unescape(re.sub(r"<[^>]+>", " ", body))
    return " ".join(body.split())


@pytest.fixture
def redress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CASEWARD_STATEMENTS__DISPUTE_SETTLEMENT_BODY", "Example Dispute Settlement Body"
    )
    monkeypatch.setenv("CASEWARD_STATEMENTS__DISPUTE_SETTLEMENT_URL", "https://ods.example.eu/")
    monkeypatch.setenv("CASEWARD_STATEMENTS__COURTS", "the courts of Dublin, Ireland")
    reset_caches()


@pytest.mark.usefixtures("redress")
@pytest.mark.parametrize(("policy", "severity", "template", "decided"), ENFORCED, ids=str)
def test_every_enforcement_notice_carries_each_element_of_article_17(
    engine: Engine, policy: Policy, severity: Severity, template: EmailTemplate, decided: str
) -> None:
    case_id = f.case_in(engine, "enforced", policy=policy, severity=severity, evidence=EVIDENCE)
    settings = get_settings()
    with session_scope(engine) as session:
        buffer = io.StringIO()
        export(session, out=buffer, settings=settings)
        statements = [json.loads(line) for line in buffer.getvalue().splitlines()]
        notices = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.case_id == case_id, OutboxMessage.template == template.value
            )
        ).all()
    assert notices, f"no {template} notice was stored"
    (facts,) = {s["decision_facts"] for s in statements}  # the statement's own facts
    catalog = get_renderer().catalog
    passage = " ".join(catalog["policies"][policy]["passage"].split())
    for notice in notices:
        for body, is_html in ((notice.text_body, False), (notice.html_body, True)):
            seen = words(body, is_html=is_html)
            # what is restricted, where and for how long
            assert "Statement of reasons (EU Digital Services Act, Article 17)" in seen
            for kind, phrase in SCOPE.items():
                assert (phrase in seen) == (kind in {s_kind(s) for s in statements}), kind
            assert "in all 27 member states of the European Union" in seen
            assert "no end date is set" in seen
            # the facts relied on: the very text of the statement
            assert facts in seen
            assert "42 reports on 8100 posts" in facts or policy is not Policy.SPAM
            # automated means, in detection and in the decision
            assert "Detection: no automated means were used" in seen
            assert decided in seen
            # the contractual ground, quoted, with its URL
            assert "based on our terms of service" in seen
            assert seen.count(passage[:120]) >= 1
            assert f"{settings.email.policy_url}#" in seen or is_html
            if is_html:
                assert f'href="{settings.email.policy_url}#' in body
            # redress: the appeal and its window, out-of-court settlement, the courts
            assert "within 180 days of this notice" in seen
            assert re.search(rf"{re.escape(settings.portal.base_url)}/case/[\w.-]+#appeal", body)
            assert "Example Dispute Settlement Body, a body certified under Article 21" in seen
            assert "https://ods.example.eu/" in body
            assert "the courts of Dublin, Ireland" in seen


def s_kind(statement: dict[str, object]) -> str:
    """The action a statement describes, from its decision fields (catalog.toml's mapping)."""
    return {
        "DECISION_PROVISION_PARTIAL_SUSPENSION": "restrict_app",
        "DECISION_PROVISION_PARTIAL_TERMINATION": "revoke_token",
        "DECISION_PROVISION_TOTAL_TERMINATION": "ban_app",
        "DECISION_ACCOUNT_SUSPENDED": "suspend_account",
    }[str(statement.get("decision_provision") or statement.get("decision_account"))]


@pytest.mark.parametrize(
    ("source", "confirmed_by", "decided_by", "detection", "decision"),
    [
        ("detection", "rule:spam-high", "caseward", "automated checks", "automated means, without"),
        ("detection", "lead-ann", "caseward", "automated checks", "partly automated"),
        ("manual", "lead-ann", "lead-bob", "our team identified", "members of our team"),
    ],
)
def test_the_notice_says_which_steps_were_automated(
    sqlite_db: Engine,
    source: str,
    confirmed_by: str,
    decided_by: str,
    detection: str,
    decision: str,
) -> None:
    with session_scope(sqlite_db) as session:
        case, event = make_case(session, policy="spam")
        extra = extras_for(EmailTemplate.APP_BANNED, case)
        decided = replace(
            reasons_decision(case), source=source, confirmed_by=confirmed_by, decided_by=decided_by
        )
        extra["statement_of_reasons"] = reasons_context(decided, get_settings())
        (message,) = outbox.enqueue(
            session, case=case, event=event, template=EmailTemplate.APP_BANNED, now=NOW, extra=extra
        )
    for body, is_html in ((message.text_body, False), (message.html_body, True)):
        seen = words(body, is_html=is_html)
        assert detection in seen and decision in seen
        assert "an out-of-court dispute settlement body certified under Article 21" in seen
        assert "the competent courts" in seen
