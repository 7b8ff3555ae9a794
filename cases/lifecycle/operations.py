"""The lifecycle operations before enforcement: triage, outreach, change requests, answers.

Each is a guarded change through the write path. A lead's decision always carries a reason;
deadlines start when the notice is delivered (cases/lifecycle/notices.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.clock import readable
from cases.core.enums import CaseOutcome, CaseStatus
from cases.core.errors import GuardFailed, InvalidInput
from cases.core.models import Case, ChangeRequest
from cases.core.settings import get_settings
from cases.enforcement import strikes
from cases.enforcement.catalog import get_catalog
from cases.lifecycle import batch
from cases.lifecycle.service import get_or_raise
from cases.lifecycle.states import (
    Op,
    check_transition,
)
from cases.lifecycle.write import SYSTEM, Change, origin_data, record, require_lead


def next_reminder(
    deadline: datetime, offsets_days: Sequence[int], now: datetime
) -> datetime | None:
    """The first reminder time still ahead of ``now``, or None."""
    times = sorted(deadline - timedelta(days=d) for d in offsets_days)
    return next((t for t in times if t > now), None)


def latest_change_request(session: Session, *, case_id: int) -> ChangeRequest | None:
    query = (
        select(ChangeRequest)
        .where(ChangeRequest.case_id == case_id)
        .order_by(ChangeRequest.id.desc())
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def latest_change_requests(
    session: Session, *, case_ids: Sequence[int]
) -> dict[int, ChangeRequest]:
    """:func:`latest_change_request` of many cases in one query, by case id."""
    latest = (
        select(func.max(ChangeRequest.id))
        .where(ChangeRequest.case_id.in_(case_ids))
        .group_by(ChangeRequest.case_id)
    )
    query = select(ChangeRequest).where(ChangeRequest.id.in_(latest))
    return {request.case_id: request for request in session.scalars(query)}


def changes_asked(case: Case, request: ChangeRequest | None) -> list[str]:
    """What the case's change request asks for (a reminder repeats it)."""
    if request is not None and request.changes:
        return [str(change) for change in request.changes]
    return get_catalog().entry(case.policy).required_changes


def latest_changes_asked(session: Session, case: Case) -> list[str]:
    """What the case's latest change request asks for."""
    return changes_asked(case, latest_change_request(session, case_id=case.id))


def confirm(session: Session, *, case_id: int, actor: str, reason: str, now: datetime) -> Case:
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _confirm(session, case=case, actor=actor, reason=reason, now=now)


def _confirm(
    session: Session,
    *,
    case: Case,
    actor: str,
    reason: str,
    now: datetime,
    prior: Mapping[str, int] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Case:
    """:func:`confirm` on a case the caller has locked (bulk decisions, triage rules).

    Confirming records the developers' strikes and the consequences a repeat offender's
    case gets (``cases.enforcement.strikes``); ``prior``: those strikes, when the caller
    read them for a whole batch. ``data``: context kept on the event (a triage rule says
    which rule decided).
    """
    if prior is None:
        prior = strikes.for_cases(session, [case.id], now=now).get(case.id, {})
    fields, repeat = strikes.repeat_offence(case, prior)
    record(
        session,
        case=case,
        change=Change(
            op=Op.CONFIRM,
            actor=actor,
            reason=reason,
            now=now,
            fields=fields,
            data={**(data or {}), **repeat},
        ),
    )
    return case


def dismiss(session: Session, *, case_id: int, actor: str, reason: str, now: datetime) -> Case:
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _dismiss(session, case=case, actor=actor, reason=reason, now=now)


def _dismiss(
    session: Session,
    *,
    case: Case,
    actor: str,
    reason: str,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> Case:
    """:func:`dismiss` on a case the caller has locked (bulk decisions, triage rules)."""
    record(
        session,
        case=case,
        change=Change(
            op=Op.DISMISS,
            actor=actor,
            reason=reason,
            now=now,
            fields={"outcome": CaseOutcome.DISMISSED},
            data=data or {},
        ),
    )
    return case


def check_assignee(assignee: str) -> None:
    """Cases are assigned to one of the configured leads, when there are any."""
    leads = get_settings().leads
    if leads and assignee not in leads:
        raise InvalidInput(f"{assignee} is not a lead; the configured leads are {', '.join(leads)}")


def assign(session: Session, *, case_id: int, actor: str, assignee: str, now: datetime) -> Case:
    """Give an open case to a lead (one of the configured leads, when there are any)."""
    check_assignee(assignee)
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _assign(session, case=case, actor=actor, assignee=assignee, now=now)


def _assign(session: Session, *, case: Case, actor: str, assignee: str, now: datetime) -> Case:
    """:func:`assign` on a case the caller has locked, the assignee checked (bulk decisions)."""
    record(
        session,
        case=case,
        change=Change(
            op=Op.ASSIGN,
            actor=actor,
            reason=f"assigned to {assignee}",
            now=now,
            fields={"assignee": assignee},
        ),
    )
    return case


# --- outreach and change requests -------------------------------------------------------


def send_outreach(session: Session, *, case_id: int, now: datetime) -> Case:
    """Tell the developer what was found; the response window starts on delivery."""
    return _send_outreach(session, case=get_or_raise(session, case_id=case_id, lock=True), now=now)


def _send_outreach(session: Session, *, case: Case, now: datetime) -> Case:
    """:func:`send_outreach` on a case the caller has locked (the sweeper)."""
    record(
        session,
        case=case,
        change=Change(
            op=Op.SEND_OUTREACH,
            actor=SYSTEM,
            reason="outreach sent to the developer with the evidence",
            now=now,
        ),
    )
    return case


def _change_request(
    session: Session,
    *,
    case: Case,
    op: Op,
    actor: str,
    reason: str,
    now: datetime,
    changes: Sequence[str],
    context: dict[str, object] | None = None,
) -> Case:
    """A new change request and the move that sends it; its deadline starts on delivery."""
    check_transition(op, case.status)
    asked = list(changes)
    batch.add_row(
        session, ChangeRequest, {"case_id": case.id, "changes": asked, "requested_at": now}
    )
    record(
        session,
        case=case,
        change=Change(
            op=op,
            actor=actor,
            reason=reason,
            now=now,
            data={"changes": asked},
            email_context={"changes": asked, **(context or {})},
        ),
    )
    return case


def request_changes(
    session: Session,
    *,
    case_id: int,
    actor: str,
    reason: str,
    now: datetime,
    changes: Sequence[str] | None = None,
) -> Case:
    """Ask for specific feature changes (the policy's defaults unless a lead names them)."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _request_changes(
        session, case=case, actor=actor, reason=reason, now=now, changes=changes
    )


def _request_changes(
    session: Session,
    *,
    case: Case,
    actor: str,
    reason: str,
    now: datetime,
    changes: Sequence[str] | None = None,
) -> Case:
    """:func:`request_changes` on a case the caller has locked (the sweeper)."""
    if actor != SYSTEM:
        require_lead(actor)
    asked = list(changes) if changes else get_catalog().entry(case.policy).required_changes
    return _change_request(
        session,
        case=case,
        op=Op.REQUEST_CHANGES,
        actor=actor,
        reason=reason,
        now=now,
        changes=asked,
    )


def acknowledge(
    session: Session, *, case_id: int, actor: str, statement: str, now: datetime
) -> Case:
    """The developer acknowledges the request; the deadline is unchanged."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    record(
        session, case=case, change=Change(op=Op.ACKNOWLEDGE, actor=actor, reason=statement, now=now)
    )
    _answer(session, case_id=case.id, response="acknowledged", text=statement, now=now)
    return case


def report_compliance(
    session: Session,
    *,
    case_id: int,
    actor: str,
    statement: str,
    now: datetime,
    url: str | None = None,
) -> Case:
    """The developer says the changes are made; no deadline runs while a lead verifies.
    ``url``: where the lead can see them (kept on the event and quoted in its reason)."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    reason = f"{statement}\n\nWhere to see the changes: {url}" if url else statement
    record(
        session,
        case=case,
        change=Change(
            op=Op.REPORT_COMPLIANCE,
            actor=actor,
            reason=reason,
            now=now,
            data={"url": url} if url else {},
        ),
    )
    _answer(session, case_id=case.id, response="compliance_reported", text=statement, now=now)
    return case


def _answer(session: Session, *, case_id: int, response: str, text: str, now: datetime) -> None:
    request = latest_change_request(session, case_id=case_id)
    if request is not None:
        request.response, request.response_text, request.responded_at = response, text, now


def reject_compliance(
    session: Session, *, case_id: int, actor: str, reason: str, now: datetime
) -> Case:
    """A lead finds the reported changes incomplete: a new change request, with the reason.

    Its deadline starts when it is delivered, like any change request, so a developer is
    never enforced on without having been told what is still missing.
    """
    case = get_or_raise(session, case_id=case_id, lock=True)
    asked = latest_changes_asked(session, case)
    return _change_request(
        session,
        case=case,
        op=Op.REJECT_COMPLIANCE,
        actor=actor,
        reason=reason,
        now=now,
        changes=asked,
        context={"decision_reason": reason},
    )


def resolve(session: Session, *, case_id: int, actor: str, reason: str, now: datetime) -> Case:
    """A lead verifies compliance (or finds no further action needed)."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    record(
        session,
        case=case,
        change=Change(
            op=Op.RESOLVE,
            actor=actor,
            reason=reason,
            now=now,
            fields={"outcome": CaseOutcome.RESOLVED},
            email_context={"decision_reason": reason},
        ),
    )
    return case


def extend(
    session: Session,
    *,
    case_id: int,
    actor: str,
    reason: str,
    now: datetime,
    days: int | None = None,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """Grant the one extension a case may have (``origin``: where the decision came from,
    e.g. a decision form in the Prefect UI)."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    return _extend(
        session, case=case, actor=actor, reason=reason, now=now, days=days, origin=origin
    )


def _extend(
    session: Session,
    *,
    case: Case,
    actor: str,
    reason: str,
    now: datetime,
    days: int | None = None,
    origin: Mapping[str, str] | None = None,
) -> Case:
    """:func:`extend` on a case the caller has locked (bulk decisions)."""
    settings = get_settings()
    if case.extension_granted:
        raise GuardFailed(f"case {case.id} already had its one extension")
    if case.status is CaseStatus.CHANGES_REQUESTED and case.deadline is None:
        raise GuardFailed(f"case {case.id}: the change request has not been delivered yet")
    old = case.deadline
    new = (old or now) + timedelta(days=days or settings.deadlines.extension_days)
    request = latest_change_request(session, case_id=case.id)
    record(
        session,
        case=case,
        change=Change(
            op=Op.EXTEND,
            actor=actor,
            reason=reason,
            now=now,
            data=origin_data(origin),
            fields={
                "deadline": new,
                "extension_granted": True,
                "next_reminder_at": next_reminder(
                    new, settings.deadlines.reminder_offsets_days, now
                ),
            },
            email_context={
                "old_deadline": old,
                "new_deadline": new,
                "decision_reason": reason,
                "changes": changes_asked(case, request),
            },
        ),
    )
    if request is not None:
        request.due_at = new
    return case


def send_reminder(session: Session, *, case_id: int, now: datetime) -> Case:
    """Remind the developer of the change deadline; the next reminder is set."""
    return _send_reminder(session, case=get_or_raise(session, case_id=case_id, lock=True), now=now)


def _send_reminder(session: Session, *, case: Case, now: datetime) -> Case:
    """:func:`send_reminder` on a case the caller has locked (the sweeper)."""
    offsets = get_settings().deadlines.reminder_offsets_days
    if case.deadline is None:
        raise GuardFailed(f"case {case.id} has no running deadline to remind of")
    record(
        session,
        case=case,
        change=Change(
            op=Op.REMINDER_SENT,
            actor=SYSTEM,
            reason=f"reminder: changes due {readable(case.deadline)}",
            now=now,
            fields={"next_reminder_at": next_reminder(case.deadline, offsets, now)},
            email_context={
                "deadline": case.deadline,
                "changes": latest_changes_asked(session, case),
            },
        ),
    )
    return case
