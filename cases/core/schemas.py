"""Pydantic inputs and outputs of the services (ORM classes stay in models.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cases.core.enums import CaseOutcome, Policy, Severity


class CaseCreate(BaseModel):
    """What opening a case needs: by hand from a report, or from a detection finding."""

    policy: Policy
    app_ids: list[str] = Field(min_length=1)
    developer_ids: list[str] = Field(min_length=1)
    reason: str = Field(min_length=1)
    severity: Severity = Severity.MEDIUM
    evidence: dict[str, Any] = Field(default_factory=dict)
    score: float | None = None
    source: str = "manual"

    @field_validator("app_ids", "developer_ids")
    @classmethod
    def _sorted_unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("reason")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        return value.strip()


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    kind: str
    from_status: str | None
    to_status: str
    reason: str
    data: dict[str, Any]


class CaseRead(BaseModel):
    """A case as the CLI and flows show it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    policy: str
    severity: str
    status: str
    reason: str
    source: str
    score: float | None
    opened_by: str
    assignee: str | None
    created_at: datetime
    status_changed_at: datetime
    deadline: datetime | None
    next_reminder_at: datetime | None
    extension_granted: bool
    delivery_blocked: bool
    urgent: bool
    outcome: CaseOutcome | None
    prior_strikes: dict[str, int] = Field(default_factory=dict)
    change_days: int | None = None
    lead_approval: bool = False
    app_ids: list[str]
    developer_ids: list[str]
    evidence: dict[str, Any]


class ChangeRequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    changes: list[str]
    requested_at: datetime
    notified_at: datetime | None
    due_at: datetime | None
    response: str | None
    response_text: str | None
    responded_at: datetime | None


class ActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    target_type: str
    target_id: str
    status: str
    prior_status: str | None
    applied_at: datetime | None
    reversed_at: datetime | None
    noticed_at: datetime | None
    last_error: str | None  # the platform's answer when it did not apply the action


class EnforcementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: str
    urgent: bool
    requires_approval: bool
    approved_by: str | None
    executed_at: datetime | None
    notice_sent_at: datetime | None
    reversed_at: datetime | None
    actions: list[ActionRead]


class AppealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    statement: str
    submitted_by: str
    submitted_at: datetime
    status: str
    decision_reason: str | None
    reviewer: str | None
    decided_at: datetime | None


class CaseDetail(CaseRead):
    """A case with everything that happened to it, for ``caseward cases show``;
    ``developer_strikes``: each developer's strikes now (those with none left out)."""

    events: list[EventRead]
    change_requests: list[ChangeRequestRead]
    enforcement: EnforcementRead | None
    appeal: AppealRead | None
    developer_strikes: dict[str, int] = Field(default_factory=dict)


class StrikeRead(BaseModel):
    """An enforcement against a developer: a strike while ``active``; ``expired`` past the
    strike window, ``overturned`` when an appeal reversed it."""

    case_id: int
    policy: str
    enforced_at: datetime
    expires_at: datetime
    status: str


class AppSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: str
    requests_7d: int


class EmailSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    template: str
    subject: str
    status: str
    created_at: datetime
    sent_at: datetime | None


class DeveloperDetail(BaseModel):
    """A developer account as a lead reviews it: apps, cases, strikes and e-mails."""

    id: str
    handle: str
    email: str
    status: str
    created_at: datetime
    active_strikes: int
    strike_window_days: int
    apps: list[AppSummary]
    cases: list[CaseRead]
    strikes: list[StrikeRead]
    emails: list[EmailSummary]


class AppRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    developer_id: str
    name: str
    description: str
    website: str
    callback_urls: str
    status: str
    requests_7d: int
    developer_status: str
    cases: list[CaseRead]
