"""The one write path: every change to a case is a :class:`Change` given to :func:`record`.

``record`` checks the change against the state machine (a transition from the case's status,
or an event allowed in it; a lead's decision only from a lead, or from a triage rule where
the table allows one), appends its event, applies it
to the case (``history.apply``, the same function replay uses) and enqueues the e-mails it
causes, all in the caller's transaction. Nothing here commits; the CLI command or flow task
owns the unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus, EmailTemplate
from cases.core.errors import GuardFailed, InvalidInput
from cases.core.identity import is_rule
from cases.core.models import Case, CaseEvent
from cases.core.settings import get_settings
from cases.email import outbox
from cases.lifecycle import batch, history
from cases.lifecycle.states import TRANSITIONS, Op, check_event, check_transition

# the actor of the steps Caseward takes on its own
SYSTEM = "caseward"
# the actor of cases that detection opens or refreshes
DETECTOR = "detector"

# entering a status clears the timers of the one it leaves
CLEARED_TIMERS: Mapping[str, Any] = {"deadline": None, "next_reminder_at": None}


@dataclass(frozen=True)
class Change:
    """One change to a case: what happens (``op``), who does it, when and why, and its effects.

    ``fields`` are the projected case fields it sets (replayed from the event log); ``data``
    is context kept on the event only; ``emails`` are sent on top of those ``op`` declares,
    rendered with ``email_context``.
    """

    op: Op
    actor: str
    reason: str
    now: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    emails: tuple[EmailTemplate, ...] = ()
    email_context: Mapping[str, Any] | None = None


NO_LEADS = (
    "no leads are configured, so nobody may take a lead's decision: set "
    'leads = ["ann", "bob"] in caseward.toml (or CASEWARD_LEADS=\'["ann", "bob"]\')'
)


def require_lead(actor: str) -> None:
    """Leads' decisions need a configured lead; with no ``leads``, nobody outside simulation
    (an empty list must not mean everybody) and anyone in simulation."""
    settings = get_settings()
    if not settings.leads:
        if settings.simulation:
            return
        raise GuardFailed(NO_LEADS)
    if actor not in settings.leads:
        raise GuardFailed(
            f"{actor!r} is not a lead (configured leads: {', '.join(settings.leads)})"
        )


def origin_data(origin: Mapping[str, str] | None) -> dict[str, Any]:
    """Event data saying where a decision came from (``{"origin": ...}``), or nothing."""
    return {"origin": dict(origin)} if origin else {}


def _checked(
    case: Case, change: Change
) -> tuple[CaseStatus, Mapping[str, Any], tuple[EmailTemplate, ...]]:
    """Where ``change`` takes ``case``, the fields it sets and the e-mails it sends; refuses
    a move the state machine does not allow and a lead's decision taken by anyone else."""
    if change.op is Op.OPEN:
        return CaseStatus.OPENED, change.fields, change.emails
    if change.op in TRANSITIONS:
        spec = check_transition(change.op, case.status)
        if spec.lead_only and not (spec.by_rule and is_rule(change.actor)):
            require_lead(change.actor)
        return spec.target, {**CLEARED_TIMERS, **change.fields}, (*spec.emails, *change.emails)
    event = check_event(change.op, case.status)
    if event.lead_only:
        require_lead(change.actor)
    return case.status, change.fields, (*event.emails, *change.emails)


# session.info key: the latest event time of each case this session has read or written
_LATEST = "caseward.latest_event_at"


@event.listens_for(Session, "after_soft_rollback")
def _forget_latest(session: Session, _previous: object) -> None:
    session.info.pop(_LATEST, None)  # what was rolled back may have been remembered


def remember_latest_events(session: Session, case_ids: Sequence[int]) -> None:
    """Read the latest event time of many cases at once (the sweeper's batches), so that
    :func:`record` checks its time against them without a query per case."""
    known: dict[int, datetime] = session.info.setdefault(_LATEST, {})
    with session.no_autoflush:
        rows = session.execute(
            select(CaseEvent.case_id, func.max(CaseEvent.at))
            .where(CaseEvent.case_id.in_(case_ids))
            .group_by(CaseEvent.case_id)
        )
        known.update({case_id: at for case_id, at in rows})


def _check_time(session: Session, case: Case, now: datetime) -> None:
    """A change may not be dated before the case's latest event, even in simulation: the
    history stays in order, and no command acts in a case's past."""
    if case.id is None:  # being opened
        return
    known: dict[int, datetime] = session.info.setdefault(_LATEST, {})
    if case.id not in known:
        with session.no_autoflush:
            latest = session.scalar(
                select(func.max(CaseEvent.at)).where(CaseEvent.case_id == case.id)
            )
        if latest is None:
            return
        known[case.id] = latest
    latest = known[case.id]
    if now < latest:
        raise InvalidInput(
            f"case {case.id}: the time {now.isoformat()} is earlier than the case's latest "
            f"event ({latest.isoformat()}); a command cannot act in a case's past"
        )
    known[case.id] = now


def event_data(fields: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """An event's ``data``: its context, and under ``set`` the case fields it changed."""
    return {**data, "set": history.encode(dict(fields))}


def record(session: Session, *, case: Case, change: Change) -> CaseEvent | None:
    """Append the event of ``change``, apply it to ``case`` and enqueue its e-mails.

    Nothing is flushed here: the event is linked to its case and its e-mails to the event by
    relationship, numbered by the case's own sequence, so a batch of steps is written in
    one flush at the end of its unit of work. Inside :func:`cases.lifecycle.batch.writing`
    (the sweeper), the event and its e-mails go to the batch as plain rows instead, written
    at the batch's end, and nothing is returned.
    """
    target, fields, emails = _checked(case, change)
    _check_time(session, case, change.now)
    if not change.reason or not change.reason.strip():
        raise InvalidInput("a reason is required")
    payload = event_data(fields, change.data)
    seq = case.event_count = (case.event_count or 0) + 1
    row: dict[str, Any] = {
        "seq": seq,
        "at": change.now,
        "actor": change.actor,
        "kind": change.op.value,
        "from_status": None if change.op is Op.OPEN else case.status.value,
        "to_status": target.value,
        "reason": change.reason.strip(),
        "data": payload,
    }
    history.apply(case, to_status=target, at=change.now, changes=payload["set"])  # as replay
    context = dict(change.email_context) if change.email_context is not None else None
    collecting = batch.current(session) if case.id is not None else None
    if collecting is not None:
        rows = [
            message
            for template in emails
            for message in outbox.render_rows(
                case=case, event_seq=seq, template=template, now=change.now, extra=context
            )
        ]
        collecting.add(case, row | {"case_id": case.id}, rows)
        return None
    event = CaseEvent(case=case, **row)
    session.add(event)
    for template in emails:
        outbox.enqueue(
            session, case=case, event=event, template=template, now=change.now, extra=context
        )
    return event
