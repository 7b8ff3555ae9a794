"""What a lead sees before an e-mail goes out: a template rendered for a real case.

Context an operation would supply (the changes asked, the actions taken, a reviewer's reason)
comes from the case's own records where they exist, else from ``[preview]`` placeholders in
``templates/email/catalog.toml``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cases.core.enums import ActionKind, EmailTemplate, TargetType
from cases.core.errors import InvalidInput, NotFound
from cases.core.models import Case, CaseEvent, ChangeRequest, Enforcement
from cases.core.settings import Settings
from cases.email.context import render_for, renderer_for
from cases.email.render import RenderedEmail
from cases.lifecycle.states import ENFORCEMENT_NOTICES, Op
from cases.statements.notice import notice_context

ENFORCEMENT_TEMPLATES = {template: kind for kind, template in ENFORCEMENT_NOTICES.items()}
# the lead's decision whose reason an e-mail quotes
DECIDED_BY = {
    EmailTemplate.APPEAL_UPHELD: Op.UPHOLD,
    EmailTemplate.APPEAL_OVERTURNED: Op.OVERTURN,
    EmailTemplate.CASE_RESOLVED: Op.RESOLVE,
    EmailTemplate.ENFORCEMENT_DECLINED: Op.DECLINE_ENFORCEMENT,
    EmailTemplate.EXTENSION_GRANTED: Op.EXTEND,
    EmailTemplate.EXTENSION_DECLINED: Op.DECLINE_EXTENSION,
}


def load_case(session: Session, case_id: int) -> Case:
    case = session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(selectinload(Case.apps), selectinload(Case.developers))
    )
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def _enforcement_extra(
    session: Session,
    case: Case,
    template: EmailTemplate,
    placeholders: dict[str, Any],
    request: ChangeRequest | None,
    *,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    enforcement = session.scalar(
        select(Enforcement)
        .where(Enforcement.case_id == case.id)
        .options(selectinload(Enforcement.actions))
    )
    asked = list(request.changes) if request else []
    due = request.due_at if request else None
    applied = enforcement if enforcement is not None and enforcement.actions else None
    reasons = notice_context(session, case=case, enforcement=applied, settings=settings, now=now)
    if applied is not None:
        actions = [
            {"kind": a.kind, "target_type": a.target_type, "target_id": a.target_id}
            for a in applied.actions
        ]
        return {
            "actions": actions,
            "reason": applied.reason,
            "urgent": applied.urgent,
            "deadline": None if applied.urgent else due,
            "changes": asked,
            "statement_of_reasons": reasons,
        }
    kind = ENFORCEMENT_TEMPLATES[template]
    if kind is ActionKind.SUSPEND_ACCOUNT:
        targets = [(TargetType.ACCOUNT, d.id) for d in case.developers]
    else:
        targets = [(TargetType.APP, a.id) for a in case.apps]
    actions = [{"kind": kind, "target_type": t, "target_id": i} for t, i in targets]
    return {
        "actions": actions,
        "reason": placeholders["reason"],
        "changes": asked,
        "statement_of_reasons": reasons,
    }


def _last_reason(session: Session, case: Case, kind: Op) -> str | None:
    """The reason of the case's latest event of ``kind`` (a lead's decision)."""
    query = (
        select(CaseEvent.reason)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == kind.value)
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def preview_extra(
    session: Session, *, case: Case, template: EmailTemplate, now: datetime, settings: Settings
) -> dict[str, Any]:
    """The ``extra`` the lifecycle would pass for ``template``, from the case's records."""
    placeholders: dict[str, Any] = renderer_for(settings).catalog.get("preview", {})
    deadline = case.deadline or now + timedelta(days=settings.deadlines.change_days)
    request = session.scalar(
        select(ChangeRequest)
        .where(ChangeRequest.case_id == case.id)
        .order_by(ChangeRequest.id.desc())
        .limit(1)
    )
    asked = list(request.changes) if request else placeholders["changes"]
    decided = _last_reason(session, case, DECIDED_BY.get(template, Op.RESOLVE))
    decision_reason = decided or placeholders["decision_reason"]
    if template is EmailTemplate.FEATURE_CHANGE_REQUEST:
        return {"changes": asked}
    if template in (EmailTemplate.DEADLINE_REMINDER, EmailTemplate.EXTENSION_REQUESTED):
        return {"deadline": deadline, "changes": asked}
    if template is EmailTemplate.EXTENSION_DECLINED:
        return {"deadline": deadline, "changes": asked, "decision_reason": decision_reason}
    if template is EmailTemplate.EXTENSION_GRANTED:
        extended = deadline + timedelta(days=settings.deadlines.extension_days)
        return {
            "old_deadline": deadline,
            "new_deadline": extended,
            "changes": asked,
            "decision_reason": decision_reason,
        }
    if template in ENFORCEMENT_TEMPLATES:
        return _enforcement_extra(
            session, case, template, placeholders, request, settings=settings, now=now
        )
    if template in DECIDED_BY:
        return {"decision_reason": decision_reason}
    return {}


def preview_email(
    session: Session,
    *,
    case_id: int,
    template: EmailTemplate,
    now: datetime,
    settings: Settings,
    developer_id: str | None = None,
) -> tuple[str, RenderedEmail]:
    """The address and the rendered e-mail ``template`` would send for ``case_id``."""
    case = load_case(session, case_id)
    developers = [d for d in case.developers if developer_id in (None, d.id)]
    if not developers:
        raise InvalidInput(f"developer {developer_id} is not part of case {case_id}")
    developer = developers[0]
    extra = preview_extra(session, case=case, template=template, now=now, settings=settings)
    rendered = render_for(
        case=case, developer=developer, template=template, now=now, extra=extra, settings=settings
    )
    return developer.email, rendered
