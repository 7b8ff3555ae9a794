"""The one write path: every change to a case goes through :func:`record`.

It appends the event, applies it to the case (history.apply, the same function replay uses)
and enqueues the e-mails the step causes, all in the caller's transaction. Nothing here
commits; the CLI command or flow task owns the unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus, EmailTemplate
from cases.core.errors import GuardFailed, InvalidInput
from cases.core.models import Case, CaseEvent
from cases.core.settings import get_settings
from cases.email import outbox
from cases.lifecycle import history
from cases.lifecycle.states import Op, check_event, check_transition

# the actor of the steps Caseward takes on its own
SYSTEM = "caseward"


def record(
    session: Session,
    *,
    case: Case,
    op: Op,
    actor: str,
    reason: str,
    now: datetime,
    to_status: CaseStatus | None = None,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    emails: Sequence[EmailTemplate] = (),
    email_context: dict[str, Any] | None = None,
) -> CaseEvent:
    """Append an event, apply it to ``case`` and enqueue its e-mails: the one write path.

    Nothing is flushed here: the event is linked to its case and its e-mails to the event by
    relationship, numbered by the case's own sequence, so a batch of steps is written in
    one flush at the end of its unit of work.
    """
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required")
    target = to_status or case.status
    payload = dict(data or {})
    payload["set"] = history.encode(changes or {})
    case.event_count = (case.event_count or 0) + 1
    event = CaseEvent(
        case=case,
        seq=case.event_count,
        at=now,
        actor=actor,
        kind=op.value,
        from_status=None if op is Op.OPEN else case.status.value,
        to_status=target.value,
        reason=reason.strip(),
        data=payload,
    )
    session.add(event)
    history.apply(case, to_status=target, at=now, changes=payload["set"])  # as replay does
    for template in emails:
        outbox.enqueue(
            session, case=case, event=event, template=template, now=now, extra=email_context
        )
    return event


def require_lead(actor: str) -> None:
    """Leads' decisions need a lead when ``leads`` is configured (empty: anyone)."""
    leads = get_settings().leads
    if leads and actor not in leads:
        raise GuardFailed(f"{actor!r} is not a lead (configured leads: {', '.join(leads)})")


def transition(
    session: Session,
    *,
    case: Case,
    op: Op,
    actor: str,
    reason: str,
    now: datetime,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    emails: Sequence[EmailTemplate] = (),
    email_context: dict[str, Any] | None = None,
) -> CaseEvent:
    """Move ``case`` by ``op``; refuses illegal moves and, for a lead's move, non-leads.

    Entering a status clears its timers.
    """
    spec = check_transition(op, case.status)
    if spec.lead_only:
        require_lead(actor)
    cleared: dict[str, Any] = {"deadline": None, "next_reminder_at": None}
    return record(
        session,
        case=case,
        op=op,
        actor=actor,
        reason=reason,
        now=now,
        to_status=spec.target,
        changes=cleared | (changes or {}),
        data=data,
        emails=(*spec.emails, *emails),
        email_context=email_context,
    )


def record_event(
    session: Session,
    *,
    case: Case,
    op: Op,
    actor: str,
    reason: str,
    now: datetime,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    email_context: dict[str, Any] | None = None,
) -> CaseEvent:
    """Record ``op`` without a status change; refuses it where the status does not allow it
    and, for a lead's decision, from anyone but a lead."""
    spec = check_event(op, case.status)
    if spec.lead_only:
        require_lead(actor)
    return record(
        session,
        case=case,
        op=op,
        actor=actor,
        reason=reason,
        now=now,
        changes=changes,
        data=data,
        emails=spec.emails,
        email_context=email_context,
    )
