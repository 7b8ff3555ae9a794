"""One developer's view of one case: what their case page shows, as plain data.

Only what concerns the developer reaches the page: their own apps, what was found about them
(the e-mail's own words, :mod:`cases.email.findings`), the changes asked and the deadline,
the e-mails sent to them, and the steps of the case that concern them, with their own
statements and the reasons leads gave in e-mails. Another party's apps, statements and
e-mails are never read; leads' internal notes, assignments and approvals are left out.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.models import Case, CaseEvent, Developer, OutboxMessage
from cases.core.settings import Settings
from cases.email.context import (
    _web_link,
    build_context,
    case_ref,
    one_line,
    policy_link,
    renderer_for,
)
from cases.enforcement.catalog import get_catalog
from cases.lifecycle import extensions
from cases.lifecycle.operations import changes_asked, latest_change_request
from cases.lifecycle.service import get_many
from cases.lifecycle.states import Op
from cases.portal.actions import Action, available, developer_actor
from cases.portal.links import LinkClaims

# the steps a developer's timeline shows (the page words each kind)
STEPS = frozenset(
    {
        Op.SEND_OUTREACH,
        Op.REQUEST_CHANGES,
        Op.REMINDER_SENT,
        Op.ACKNOWLEDGE,
        Op.REPORT_COMPLIANCE,
        Op.REJECT_COMPLIANCE,
        Op.REQUEST_EXTENSION,
        Op.DECLINE_EXTENSION,
        Op.EXTEND,
        Op.RESOLVE,
        Op.ESCALATE,
        Op.DECLINE_ENFORCEMENT,
        Op.ENFORCE,
        Op.SUBMIT_APPEAL,
        Op.UPHOLD,
        Op.OVERTURN,
        Op.CLOSE,
    }
)
# a lead's decision whose reason the developer was e-mailed (``decision_reason``)
TOLD_REASONS = frozenset(
    {
        Op.REJECT_COMPLIANCE,
        Op.DECLINE_EXTENSION,
        Op.EXTEND,
        Op.RESOLVE,
        Op.DECLINE_ENFORCEMENT,
        Op.UPHOLD,
        Op.OVERTURN,
    }
)
DEVELOPER_PREFIX = developer_actor("")


class AppLine(BaseModel):
    id: str
    name: str
    website: str
    website_url: str | None
    status: str


class EmailLine(BaseModel):
    at: datetime
    subject: str
    status: str
    text: str


class StepLine(BaseModel):
    at: datetime
    kind: str
    yours: bool
    text: str | None  # the developer's own statement, or the reason they were e-mailed


class PortalView(BaseModel):
    """Everything the case page shows one developer."""

    case_id: int
    ref: str
    developer_handle: str
    platform_name: str
    policy_title: str
    policy_url: str
    status: str
    found: str
    apps: list[AppLine]
    changes: list[str]
    deadline: datetime | None
    extension_granted: bool
    extension_waiting: bool
    actions: list[Action]
    emails: list[EmailLine]
    steps: list[StepLine]
    tz: str


def open_link(session: Session, claims: LinkClaims) -> tuple[Case, Developer] | None:
    """The case and developer a valid link names; None if either is gone (the developer
    left the case, the case was removed)."""
    found = get_many(session, case_ids=[claims.case_id])
    if not found:
        return None
    case = found[0]
    developer = next((d for d in case.developers if claims.names(d.id)), None)
    return (case, developer) if developer is not None else None


def _found_text(case: Case, developer: Developer, now: datetime, settings: Settings) -> str:
    """What was found about this developer, in the words of their e-mails."""
    renderer = renderer_for(settings)
    context = build_context(
        case=case,
        developer=developer,
        template="portal",
        now=now,
        extra=None,
        settings=settings,
        catalog=renderer.catalog,
    )
    text = renderer.env.get_template("partials/found.txt.j2").render(context).strip()
    return text.partition("\n")[2].strip()  # the partial's own heading: the page has one


def _steps(session: Session, case: Case, actor: str) -> list[StepLine]:
    events = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind.in_([s.value for s in STEPS]))
        .order_by(CaseEvent.seq)
    )
    steps = []
    for event in events:
        yours = event.actor == actor
        if event.actor.startswith(DEVELOPER_PREFIX) and not yours:
            continue  # another party's answer is theirs
        told = Op(event.kind) in TOLD_REASONS
        steps.append(
            StepLine(
                at=event.at,
                kind=event.kind,
                yours=yours,
                text=event.reason if yours or told else None,
            )
        )
    return steps


def _emails(session: Session, case: Case, developer: Developer) -> list[EmailLine]:
    messages = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.case_id == case.id, OutboxMessage.developer_id == developer.id)
        .order_by(OutboxMessage.id)
    )
    return [
        EmailLine(
            at=m.sent_at or m.created_at, subject=m.subject, status=m.status.value, text=m.text_body
        )
        for m in messages
    ]


def portal_view(
    session: Session, *, case: Case, developer: Developer, now: datetime, settings: Settings
) -> PortalView:
    """The case page of ``developer`` for ``case`` at ``now``."""
    catalog = renderer_for(settings).catalog
    request = latest_change_request(session, case_id=case.id)
    return PortalView(
        case_id=case.id,
        ref=case_ref(case.id, settings),
        developer_handle=one_line(developer.handle),
        platform_name=settings.email.platform_name,
        policy_title=get_catalog().entry(case.policy).title,
        policy_url=policy_link(case.policy, settings, catalog),
        status=case.status.value,
        found=_found_text(case, developer, now, settings),
        apps=[
            AppLine(
                id=a.id,
                name=one_line(a.name),
                website=a.website or "",
                website_url=_web_link(a.website or ""),
                status=a.status.value,
            )
            for a in case.apps
            if a.developer_id == developer.id
        ],
        changes=changes_asked(case, request) if request is not None else [],
        deadline=case.deadline,
        extension_granted=case.extension_granted,
        extension_waiting=extensions.awaiting_decision(session, case_id=case.id),
        actions=available(session, case=case, developer_id=developer.id, now=now),
        emails=_emails(session, case, developer),
        steps=_steps(session, case, developer_actor(developer.id)),
        tz=settings.email.timezone,
    )
