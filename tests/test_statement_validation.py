"""The validator refuses what the Transparency Database refuses, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from cases.statements.validate import problems

VALID: dict[str, Any] = {
    "puid": "caseward-case-1-action-1",
    "decision_provision": "DECISION_PROVISION_TOTAL_TERMINATION",
    "account_type": "ACCOUNT_TYPE_BUSINESS",
    "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    "decision_ground_reference_url": "https://developer.example.com/policy#abuse",
    "incompatible_content_ground": "Developer policy: no spam",
    "incompatible_content_explanation": "The app spread spam.",
    "incompatible_content_illegal": "No",
    "content_type": ["CONTENT_TYPE_APP"],
    "category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "category_specification": ["KEYWORD_OTHER"],
    "category_specification_other": "Spam through an API app",
    "territorial_scope": ["DE", "FR"],
    "content_date": "2025-03-01",
    "application_date": "2026-12-18",
    "decision_facts": "Users reported spam.",
    "source_type": "SOURCE_VOLUNTARY",
    "automated_detection": "Yes",
    "automated_decision": "AUTOMATED_DECISION_PARTIALLY",
}


def test_the_base_statement_is_valid() -> None:
    assert problems(VALID) == []


def _without(*fields: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k not in fields}


@pytest.mark.parametrize(
    ("statement", "field"),
    [
        (VALID | {"puid": "case 1/action 1"}, "puid"),
        (VALID | {"puid": "x" * 501}, "puid"),
        (_without("puid"), "puid"),
        (_without("decision_provision"), "decision_provision"),
        (VALID | {"decision_provision": "DECISION_PROVISION_BANNED"}, "decision_provision"),
        (VALID | {"decision_account": "DECISION_ACCOUNT_BANNED"}, "decision_account"),
        (VALID | {"account_type": "ACCOUNT_TYPE_ROBOT"}, "account_type"),
        (VALID | {"decision_ground": "DECISION_GROUND_TASTE"}, "decision_ground"),
        (_without("incompatible_content_ground"), "incompatible_content_ground"),
        (VALID | {"incompatible_content_ground": "g" * 501}, "incompatible_content_ground"),
        (
            VALID | {"incompatible_content_explanation": "e" * 2001},
            "incompatible_content_explanation",
        ),
        (VALID | {"incompatible_content_illegal": "Maybe"}, "incompatible_content_illegal"),
        (
            VALID
            | {
                "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
                "illegal_content_explanation": "Unlawful under national law.",
            },
            "illegal_content_legal_ground",
        ),
        (
            VALID | {"decision_ground_reference_url": "javascript:alert(1)"},
            "decision_ground_reference_url",
        ),
        (VALID | {"content_type": []}, "content_type"),
        (VALID | {"content_type": ["CONTENT_TYPE_APP", "CONTENT_TYPE_APP"]}, "content_type"),
        (VALID | {"content_type": ["CONTENT_TYPE_OTHER"]}, "content_type_other"),
        (VALID | {"category": "STATEMENT_CATEGORY_SPAM"}, "category"),
        (VALID | {"category_specification": ["KEYWORD_SPAM"]}, "category_specification"),
        (VALID | {"territorial_scope": ["DE", "US"]}, "territorial_scope"),
        (VALID | {"territorial_scope": "DE"}, "territorial_scope"),
        (VALID | {"content_language": "en"}, "content_language"),
        (VALID | {"content_date": "1999-12-31"}, "content_date"),
        (VALID | {"application_date": "2019-12-31"}, "application_date"),
        (VALID | {"application_date": "2026-02-30"}, "application_date"),
        (VALID | {"application_date": "18/12/2026"}, "application_date"),
        (VALID | {"end_date_service_restriction": "2026-12-17"}, "end_date_service_restriction"),
        (VALID | {"decision_facts": "f" * 5001}, "decision_facts"),
        (VALID | {"decision_facts": "Write to dev1@example.org"}, "decision_facts"),
        (_without("decision_facts"), "decision_facts"),
        (VALID | {"source_type": "SOURCE_GUESS"}, "source_type"),
        (VALID | {"automated_detection": "yes"}, "automated_detection"),
        (VALID | {"automated_decision": "Yes"}, "automated_decision"),
        (VALID | {"developer_handle": "dev1"}, "developer_handle"),
    ],
)
def test_each_rule_names_its_field(statement: dict[str, Any], field: str) -> None:
    found = problems(statement)
    assert found and {p.field for p in found} == {field}, found


def test_an_account_decision_alone_is_enough() -> None:
    account = _without("decision_provision") | {"decision_account": "DECISION_ACCOUNT_SUSPENDED"}
    assert problems(account) == []
