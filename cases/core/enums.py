"""Closed vocabularies shared by models, services, templates and the CLI."""

from __future__ import annotations

from enum import StrEnum


class Policy(StrEnum):
    """The four policies of docs/platform-data.md."""

    SPAM = "spam"
    DUPLICATE_APPS = "duplicate_apps"
    RATE_LIMIT_CIRCUMVENTION = "rate_limit_circumvention"
    USER_SUPPLIED_KEYS = "user_supplied_keys"


class CaseStatus(StrEnum):
    """Where a case is in the lifecycle (cases/lifecycle/states.py declares the moves)."""

    OPENED = "opened"
    DISMISSED = "dismissed"
    CONFIRMED = "confirmed"
    OUTREACH_SENT = "outreach_sent"
    CHANGES_REQUESTED = "changes_requested"
    COMPLIANCE_REPORTED = "compliance_reported"
    RESOLVED = "resolved"
    ENFORCEMENT_DUE = "enforcement_due"
    ENFORCED = "enforced"
    APPEALED = "appealed"
    CLOSED = "closed"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class AppStatus(StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"
    TOKEN_REVOKED = "token_revoked"
    BANNED = "banned"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ActionKind(StrEnum):
    """Platform actions, from mild to severe."""

    RESTRICT_APP = "restrict_app"
    REVOKE_TOKEN = "revoke_token"
    BAN_APP = "ban_app"
    SUSPEND_ACCOUNT = "suspend_account"


class TargetType(StrEnum):
    """What a platform action acts on."""

    APP = "app"
    ACCOUNT = "account"


class ActionStatus(StrEnum):
    """Where a platform action is (cases/enforcement/execution.py declares the moves)."""

    PLANNED = "planned"
    APPLYING = "applying"  # claimed: the platform is being called (or the caller crashed)
    APPLIED = "applied"  # the platform applied it
    REVERSING = "reversing"  # lifted by a decision; the platform is being told
    REVERSED = "reversed"  # lifted on the platform
    DECLINED = "declined"  # a lead decided against it before it was applied
    FAILED = "failed"  # never applied: the platform refused it, or the case closed first


class AppealStatus(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class CaseOutcome(StrEnum):
    """How a case ended; set when it reaches a terminal status."""

    DISMISSED = "dismissed"
    RESOLVED = "resolved"
    DECLINED = "declined"
    ENFORCED = "enforced"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class FindingAction(StrEnum):
    """What storing a detection finding did to its case."""

    OPENED = "opened"
    REFRESHED = "refreshed"
    UNCHANGED = "unchanged"
    DISMISSED = "dismissed"  # a lead dismissed the same finding recently: no new case


class EmailTemplate(StrEnum):
    """One template per developer-facing step; values are the file stems in templates/email/."""

    OUTREACH = "outreach"
    FEATURE_CHANGE_REQUEST = "feature_change_request"
    DEADLINE_REMINDER = "deadline_reminder"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_GRANTED = "extension_granted"
    EXTENSION_DECLINED = "extension_declined"
    CASE_RESOLVED = "case_resolved"
    ENFORCEMENT_DECLINED = "enforcement_declined"
    APP_RESTRICTED = "app_restricted"
    TOKEN_REVOKED = "token_revoked"
    APP_BANNED = "app_banned"
    ACCOUNT_SUSPENDED = "account_suspended"
    APPEAL_RECEIVED = "appeal_received"
    APPEAL_UPHELD = "appeal_upheld"
    APPEAL_OVERTURNED = "appeal_overturned"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


class SubmissionStatus(StrEnum):
    """Where a statement of reasons is on its way to the Transparency Database."""

    PENDING = "pending"  # not accepted yet (a transient failure put it back)
    SENDING = "sending"  # claimed: in a request whose answer is not recorded yet
    SUBMITTED = "submitted"  # accepted, or found there already under its puid
    REJECTED = "rejected"  # refused as invalid; sent again on the next run
