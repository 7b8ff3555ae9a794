"""ORM models: the registry Caseward enforces on, and the cases with their full history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cases.core.db import Base, JSONType, stored_enum
from cases.core.enums import (
    AccountStatus,
    ActionKind,
    ActionStatus,
    AppealStatus,
    AppStatus,
    CaseOutcome,
    CaseStatus,
    OutboxStatus,
    Severity,
    SubmissionStatus,
    TargetType,
)

case_apps = Table(
    "case_apps",
    Base.metadata,
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("app_id", ForeignKey("apps.id"), primary_key=True, index=True),
)

case_developers = Table(
    "case_developers",
    Base.metadata,
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("developer_id", ForeignKey("developers.id"), primary_key=True, index=True),
)


class Developer(Base):
    """A developer account of the platform."""

    __tablename__ = "developers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    handle: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    status: Mapped[AccountStatus] = mapped_column(default=AccountStatus.ACTIVE)

    apps: Mapped[list[App]] = relationship(back_populates="developer", lazy="raise")


class App(Base):
    """A registered API app. ``status`` is what enforcement changes; imports never touch it."""

    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    developer_id: Mapped[str] = mapped_column(ForeignKey("developers.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str] = mapped_column(String(2000), default="")
    callback_urls: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    rate_limit_per_hour: Mapped[int | None]
    requests_7d: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[AppStatus] = mapped_column(default=AppStatus.ACTIVE)

    developer: Mapped[Developer] = relationship(back_populates="apps", lazy="raise")


class Case(Base):
    """One enforcement case. Its fields are a projection of its event log (see history.py)."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[Severity] = mapped_column(default=Severity.MEDIUM)
    status: Mapped[CaseStatus] = mapped_column(default=CaseStatus.OPENED)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="manual")
    score: Mapped[float | None]
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_by: Mapped[str] = mapped_column(String(200))
    assignee: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    status_changed_at: Mapped[datetime]
    # when the current status times out (None until its notice is delivered)
    deadline: Mapped[datetime | None]
    next_reminder_at: Mapped[datetime | None]
    extension_granted: Mapped[bool] = mapped_column(default=False)
    delivery_blocked: Mapped[bool] = mapped_column(default=False)
    enforcement_approved_by: Mapped[str | None] = mapped_column(String(200))
    urgent: Mapped[bool] = mapped_column(default=False)
    outcome: Mapped[CaseOutcome | None] = mapped_column(stored_enum(CaseOutcome, length=20))
    # repeat offenders (cases/enforcement/strikes.py): each developer's strikes when the case
    # was confirmed, and the consequences the catalogue gave it then
    prior_strikes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    change_days: Mapped[int | None]  # a shorter change deadline; None: the configured one
    lead_approval: Mapped[bool] = mapped_column(default=False)  # every action needs a lead
    # how many events the case has; the next event's ``seq`` (known before any flush)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)

    apps: Mapped[list[App]] = relationship(secondary=case_apps, lazy="raise", order_by=App.id)
    developers: Mapped[list[Developer]] = relationship(
        secondary=case_developers, lazy="raise", order_by=Developer.id
    )
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", lazy="raise", order_by="CaseEvent.id"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_cases_status_deadline", "status", "deadline"),
        Index("ix_cases_status_next_reminder_at", "status", "next_reminder_at"),
    )


class CaseEvent(Base):
    """Append-only history: who did what, when, from which status to which, and why."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3... within the case
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    # "set": the case fields this event changed (what replay applies); anything else is context
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="events", lazy="raise")

    __table_args__ = (UniqueConstraint("case_id", "seq"),)


class ChangeRequest(Base):
    """The specific feature changes asked of the developer, and their answer."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    changes: Mapped[list[Any]] = mapped_column(default=list)
    requested_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    response: Mapped[str | None] = mapped_column(String(30))
    response_text: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None]


class Enforcement(Base):
    """The decision to enforce on a case: one per case, appealed as one."""

    __tablename__ = "enforcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), unique=True, index=True
    )
    reason: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(default=False)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    executed_at: Mapped[datetime | None]
    notice_sent_at: Mapped[datetime | None]
    reversed_at: Mapped[datetime | None]

    actions: Mapped[list[PlatformAction]] = relationship(
        back_populates="enforcement", lazy="raise", order_by="PlatformAction.id"
    )


class PlatformAction(Base):
    """One action on one app or account. The idempotency key makes re-application a no-op.

    Claimed (``applying``, ``claimed_at``/``claimed_by``) before the platform is called, its
    outcome recorded after; ``noticed_at`` is when the developer's notice of it was queued.
    """

    __tablename__ = "platform_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enforcement_id: Mapped[int] = mapped_column(
        ForeignKey("enforcements.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ActionKind]
    target_type: Mapped[TargetType] = mapped_column(stored_enum(TargetType, length=10))
    target_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[ActionStatus] = mapped_column(default=ActionStatus.PLANNED)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    prior_status: Mapped[str | None] = mapped_column(String(20))
    applied_at: Mapped[datetime | None]
    reversed_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    noticed_at: Mapped[datetime | None]

    enforcement: Mapped[Enforcement] = relationship(back_populates="actions", lazy="raise")

    __table_args__ = (Index("ix_platform_actions_target", "target_type", "target_id"),)


class Appeal(Base):
    """A developer's appeal of an enforcement, and the lead's decision."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enforcement_id: Mapped[int] = mapped_column(
        ForeignKey("enforcements.id", ondelete="CASCADE"), unique=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    statement: Mapped[str] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime]
    status: Mapped[AppealStatus] = mapped_column(default=AppealStatus.PENDING)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """An e-mail, rendered and stored in the transaction of the step that causes it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("case_events.id", ondelete="CASCADE"))
    template: Mapped[str] = mapped_column(String(40))
    developer_id: Mapped[str] = mapped_column(String(200))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(Text)
    # what SendGrid's Event Webhook reported (cases/email/events.py): when the message
    # reached the developer's mail server, or when it bounced or was dropped
    delivered_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]

    event: Mapped[CaseEvent] = relationship(lazy="raise")

    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)


class EmailEvent(Base):
    """One event of SendGrid's Event Webhook about one of our e-mails, kept once: its
    ``sg_event_id`` is unique, so a batch SendGrid sends again changes nothing."""

    __tablename__ = "email_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sg_event_id: Mapped[str] = mapped_column(String(200), unique=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime]  # the event's own time, as SendGrid reports it
    received_at: Mapped[datetime]  # business time of the batch that brought it
    detail: Mapped[str] = mapped_column(Text, default="")


class StatementSubmission(Base):
    """A statement of reasons on its way to the EU's DSA Transparency Database.

    One per decision and subject: ``action_id`` is the subject's first action of the
    enforcement, so the statement keeps its ``puid`` whatever the settings say later.
    """

    __tablename__ = "statement_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("platform_actions.id", ondelete="CASCADE"), unique=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    puid: Mapped[str] = mapped_column(String(500), unique=True)
    status: Mapped[SubmissionStatus] = mapped_column(
        stored_enum(SubmissionStatus, length=20), default=SubmissionStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    # what the database answered: the statement's uuid and permalink, or its errors
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_statement_submissions_status", "status"),)


class SlaBreach(Base):
    """An item of the leads' work queue that waited longer than its service-level target;
    one row per breach (the case, the kind of item, since when it waits), announced once
    as a Prefect event (``announced_at``)."""

    __tablename__ = "sla_breaches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    since: Mapped[datetime]
    due_at: Mapped[datetime]
    detected_at: Mapped[datetime]
    announced_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("case_id", "kind", "since"),)


class RelayCursor(Base):
    """How far a reader of ``case_events`` (the Prefect event relay in flows/) has got."""

    __tablename__ = "relay_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)


__all__ = [
    "App",
    "Appeal",
    "Case",
    "CaseEvent",
    "ChangeRequest",
    "Developer",
    "EmailEvent",
    "Enforcement",
    "OutboxMessage",
    "PlatformAction",
    "RelayCursor",
    "SlaBreach",
    "StatementSubmission",
    "case_apps",
    "case_developers",
]
