"""Every statement is checked against the Transparency Database's rules before it is written
or sent: a statement the database would refuse is reported with its field, never sent.

The rules are those of the database's API documentation (see :mod:`.vocabulary`), plus one
of the Digital Services Act itself: no personal data, so no free-text field may carry an
e-mail address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cases.statements import vocabulary as v

REQUIRED = (
    "puid",
    "decision_ground",
    "content_type",
    "category",
    "territorial_scope",
    "content_date",
    "application_date",
    "decision_facts",
    "source_type",
    "automated_detection",
    "automated_decision",
)
DECISIONS = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
FIELDS = frozenset(
    {
        *REQUIRED,
        *DECISIONS,
        *v.TEXT_MAX,
        *v.END_DATES,
        "account_type",
        "incompatible_content_illegal",
        "category_addition",
        "category_specification",
        "content_language",
    }
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Problem:
    """Why the database would refuse a statement: the field and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


Add = Callable[[str, str], None]


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _one_of(s: Mapping[str, Any], field: str, allowed: frozenset[str], add: Add) -> None:
    value = s.get(field)
    if value is not None and value not in allowed:
        add(field, f"{value!r} is not an accepted value")


def _all_of(s: Mapping[str, Any], field: str, allowed: frozenset[str], add: Add) -> None:
    value = s.get(field)
    if value is None:
        return
    if not isinstance(value, list) or not value:
        add(field, "must be a non-empty list")
        return
    problem = _members_problem(tuple(value), allowed)
    if problem is not None:
        add(field, problem)


@lru_cache(maxsize=1024)
def _members_problem(values: tuple[Any, ...], allowed: frozenset[str]) -> str | None:
    """What is wrong with a list's values (cached: scopes and keywords repeat)."""
    wrong = [str(item) for item in values if item not in allowed]
    if wrong:
        return f"not accepted: {', '.join(wrong)}"
    if len(set(values)) != len(values):
        return "lists a value twice"
    return None


def _decisions(s: Mapping[str, Any], add: Add) -> None:
    if all(_blank(s.get(field)) for field in DECISIONS):
        add("decision_provision", f"one of {', '.join(DECISIONS)} is required")
    _all_of(s, "decision_visibility", v.DECISION_VISIBILITY, add)
    _one_of(s, "decision_monetary", v.DECISION_MONETARY, add)
    _one_of(s, "decision_provision", v.DECISION_PROVISION, add)
    _one_of(s, "decision_account", v.DECISION_ACCOUNT, add)
    _one_of(s, "account_type", v.ACCOUNT_TYPE, add)
    if "DECISION_VISIBILITY_OTHER" in (s.get("decision_visibility") or []):
        _require(s, "decision_visibility_other", "the visibility decision is OTHER", add)
    if s.get("decision_monetary") == "DECISION_MONETARY_OTHER":
        _require(s, "decision_monetary_other", "the monetary decision is OTHER", add)


def _require(s: Mapping[str, Any], field: str, because: str, add: Add) -> None:
    if _blank(s.get(field)):
        add(field, f"required when {because}")


def _ground(s: Mapping[str, Any], add: Add) -> None:
    ground = s.get("decision_ground")
    _one_of(s, "decision_ground", v.DECISION_GROUND, add)
    if ground == v.INCOMPATIBLE:
        for field in ("incompatible_content_ground", "incompatible_content_explanation"):
            _require(s, field, "the ground is incompatible content", add)
        _one_of(s, "incompatible_content_illegal", v.YES_NO, add)
    elif ground == v.ILLEGAL:
        for field in ("illegal_content_legal_ground", "illegal_content_explanation"):
            _require(s, field, "the ground is illegal content", add)
    url = s.get("decision_ground_reference_url")
    if url is not None:
        parts = urlsplit(str(url))
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            add("decision_ground_reference_url", "must be an http(s) URL")


def _content(s: Mapping[str, Any], add: Add) -> None:
    _all_of(s, "content_type", v.CONTENT_TYPE, add)
    if "CONTENT_TYPE_OTHER" in (s.get("content_type") or []):
        _require(s, "content_type_other", "the content type is OTHER", add)
    _one_of(s, "category", v.CATEGORY, add)
    _all_of(s, "category_addition", v.CATEGORY, add)
    _all_of(s, "category_specification", v.KEYWORD, add)
    _all_of(s, "territorial_scope", v.EEA_COUNTRIES, add)
    language = s.get("content_language")
    if language is not None and not (
        isinstance(language, str) and len(language) == 2 and language.isupper()
    ):
        add("content_language", "must be an upper-case ISO 639-1 code")
    _one_of(s, "source_type", v.SOURCE_TYPE, add)
    _one_of(s, "automated_detection", v.YES_NO, add)
    _one_of(s, "automated_decision", v.AUTOMATED_DECISION, add)


def _date(s: Mapping[str, Any], field: str, add: Add) -> date | None:
    value = s.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not DATE.fullmatch(value):
        add(field, "must be a date YYYY-MM-DD")
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        add(field, f"{value} is not a calendar date")
        return None
    earliest = v.EARLIEST.get(field)
    if earliest is not None and parsed < earliest:
        add(field, f"must be on or after {earliest.isoformat()}")
    return parsed


def _dates(s: Mapping[str, Any], add: Add) -> None:
    _date(s, "content_date", add)
    applied = _date(s, "application_date", add)
    for field in v.END_DATES:
        ends = _date(s, field, add)
        if ends is not None and applied is not None and ends < applied:
            add(field, "must be on or after the application date")


@lru_cache(maxsize=4096)
def _text_problem(field: str, value: str, limit: int) -> str | None:
    """What is wrong with one free-text value (cached: most repeat across statements)."""
    if len(value) > limit:
        return f"{len(value):,} characters, more than {limit:,}"
    if field != "decision_ground_reference_url" and "@" in value and EMAIL.search(value):
        return "contains an e-mail address (statements carry no personal data)"
    return None


def _texts(s: Mapping[str, Any], add: Add) -> None:
    puid = s.get("puid")
    if puid is not None and (
        not isinstance(puid, str) or len(puid) > v.PUID_MAX or not v.PUID.fullmatch(puid)
    ):
        add("puid", f"must be 1 to {v.PUID_MAX} characters of a-z, A-Z, 0-9, '-' and '_'")
    for field, limit in v.TEXT_MAX.items():
        value = s.get(field)
        if value is None:
            continue
        problem = _text_problem(field, value, limit) if isinstance(value, str) else "must be text"
        if problem is not None:
            add(field, problem)


def problems(statement: Mapping[str, Any]) -> list[Problem]:
    """Everything the Transparency Database would refuse in ``statement`` (empty: valid)."""
    found: list[Problem] = []

    def add(field: str, message: str) -> None:
        found.append(Problem(field, message))

    for field in statement:
        if field not in FIELDS:
            add(field, "is not a field of the statement format")
    for field in REQUIRED:
        if _blank(statement.get(field)):
            add(field, "is required")
    _texts(statement, add)
    _decisions(statement, add)
    _ground(statement, add)
    _content(statement, add)
    _dates(statement, add)
    return found
