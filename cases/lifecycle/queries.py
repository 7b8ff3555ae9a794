"""Read models: a case with its whole history, an app with its cases."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus
from cases.core.errors import NotFound
from cases.core.models import (
    App,
    Appeal,
    Case,
    ChangeRequest,
    Developer,
    OutboxMessage,
    PlatformAction,
    case_developers,
)
from cases.core.schemas import (
    AppealRead,
    AppRead,
    AppSummary,
    CaseDetail,
    ChangeRequestRead,
    DeveloperDetail,
    EmailSummary,
    EnforcementRead,
    EventRead,
)
from cases.core.settings import get_settings
from cases.enforcement import planning, strikes
from cases.lifecycle import briefs, service
from cases.lifecycle.states import TERMINAL

EMAILS_SHOWN = 200  # a developer's latest e-mails in ``developer_detail``


def case_detail(session: Session, *, case_id: int, now: datetime | None = None) -> CaseDetail:
    """The case with its whole history; with ``now``, its developers' strikes then."""
    case = service.get_or_raise(session, case_id=case_id)
    developer_ids = [d.id for d in case.developers]
    requests = session.scalars(
        select(ChangeRequest).where(ChangeRequest.case_id == case_id).order_by(ChangeRequest.id)
    )
    decision = planning.get_for_case(session, case_id=case_id)
    appeal = session.scalars(select(Appeal).where(Appeal.case_id == case_id)).one_or_none()
    return CaseDetail(
        **service.to_read(case).model_dump(),
        events=[EventRead.model_validate(e) for e in service.events(session, case_id=case_id)],
        change_requests=[ChangeRequestRead.model_validate(r) for r in requests],
        enforcement=EnforcementRead.model_validate(decision) if decision else None,
        appeal=AppealRead.model_validate(appeal) if appeal else None,
        developer_strikes=strikes.current(session, developer_ids, now=now) if now else {},
    )


def waiting_for_lead(session: Session) -> list[int]:
    """Cases only a lead can move on: an enforcement to approve, an appeal to decide, a
    compliance report to check, an undelivered notice to deal with."""
    waiting = {w.case_id for w in briefs.waiting_decisions(session, limit=1_000_000)}
    query = select(Case.id).where(
        (Case.status == CaseStatus.COMPLIANCE_REPORTED)
        | (Case.delivery_blocked.is_(True) & Case.status.not_in(TERMINAL))
    )
    return sorted(waiting | set(session.scalars(query)))


def app_detail(session: Session, *, app_id: str) -> AppRead:
    app = session.get(App, app_id)
    if app is None:
        raise NotFound(f"no app with id {app_id}")
    owner = session.get(Developer, app.developer_id)
    assert owner is not None
    return AppRead(
        id=app.id,
        developer_id=app.developer_id,
        name=app.name,
        description=app.description,
        website=app.website,
        callback_urls=app.callback_urls,
        status=app.status.value,
        requests_7d=app.requests_7d,
        developer_status=owner.status.value,
        cases=[service.to_read(c) for c in service.list_cases(session, app_id=app_id)],
    )


def developer_detail(session: Session, *, developer_id: str, now: datetime) -> DeveloperDetail:
    """A developer's apps, cases, strikes (each enforcement against them, active, expired or
    overturned at ``now``) and the e-mails sent to them, newest first."""
    developer = session.get(Developer, developer_id)
    if developer is None:
        raise NotFound(f"no developer with id {developer_id}")
    apps = session.scalars(select(App).where(App.developer_id == developer_id).order_by(App.id))
    case_ids = select(case_developers.c.case_id).where(
        case_developers.c.developer_id == developer_id
    )
    cases = service.list_cases(session, case_ids=list(session.scalars(case_ids)))
    emails = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.developer_id == developer_id)
        .order_by(OutboxMessage.id.desc())
        .limit(EMAILS_SHOWN)
    )
    history = strikes.history(session, developer_id, now=now)
    return DeveloperDetail(
        id=developer.id,
        handle=developer.handle,
        email=developer.email,
        status=developer.status.value,
        created_at=developer.created_at,
        active_strikes=sum(1 for s in history if s.status == "active"),
        strike_window_days=get_settings().strikes.window_days,
        apps=[AppSummary.model_validate(a) for a in apps],
        cases=[service.to_read(c) for c in cases],
        strikes=history,
        emails=[EmailSummary.model_validate(m) for m in emails],
    )


def daily_report(session: Session, *, now: datetime) -> dict[str, Any]:
    """Open cases by policy and status, this week's deadlines, action and appeal outcomes,
    and the decisions waiting for a lead."""
    open_cases = session.execute(
        select(Case.policy, Case.status, func.count())
        .where(Case.status.not_in(TERMINAL))
        .group_by(Case.policy, Case.status)
        .order_by(Case.policy, Case.status)
    ).all()
    due = session.execute(
        select(Case.id, Case.policy, Case.status, Case.deadline)
        .where(Case.deadline >= now, Case.deadline < now + timedelta(days=7))
        .order_by(Case.deadline)
        .limit(200)
    ).all()
    actions = session.execute(
        select(PlatformAction.kind, PlatformAction.status, func.count()).group_by(
            PlatformAction.kind, PlatformAction.status
        )
    ).all()
    appeals: Counter[str] = Counter(
        {
            str(status): count
            for status, count in session.execute(
                select(Appeal.status, func.count()).group_by(Appeal.status)
            ).all()
        }
    )
    decided = appeals["upheld"] + appeals["overturned"]
    return {
        "open": [{"policy": p, "status": s.value, "cases": n} for p, s, n in open_cases],
        "deadlines": [
            {"case": i, "policy": p, "status": s.value, "deadline": d.isoformat() if d else None}
            for i, p, s, d in due
        ],
        "actions": [{"action": k.value, "status": s.value, "count": n} for k, s, n in actions],
        "appeals": dict(appeals),
        "overturn_rate": appeals["overturned"] / decided if decided else None,
        "waiting": [w.model_dump(mode="json") for w in briefs.waiting_decisions(session)],
    }
