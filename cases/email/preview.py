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
from cases.core.models import Appeal, Case, ChangeRequest, Enforcement
from cases.core.settings import Settings
from cases.email.context import render_for, renderer_for
from cases.email.render import RenderedEmail
from cases.lifecycle.states import ENFORCEMENT_NOTICES
from cases.statements.notice import notice_context

ENFORCEMENT_TEMPLATES = {template: kind for kind, template in ENFORCEMENT_NOTICES.items()}
APPEAL_DECISIONS = {EmailTemplate.APPEAL_UPHELD, EmailTemplate.APPEAL_OVERTURNED}


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
    *,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    enforcement = session.scalar(
        select(Enforcement)
        .where(Enforcement.case_id == case.id)
        .options(selectinload(Enforcement.actions))
    )
    applied = enforcement if enforcement is not None and enforcement.actions else None
    reasons = notice_context(session, case=case, enforcement=applied, settings=settings, now=now)
    if applied is not None:
        actions = [
            {"kind": a.kind, "target_type": a.target_type, "target_id": a.target_id}
            for a in applied.actions
        ]
        return {"actions": actions, "reason": applied.reason, "statement_of_reasons": reasons}
    kind = ENFORCEMENT_TEMPLATES[template]
    if kind is ActionKind.SUSPEND_ACCOUNT:
        targets = [(TargetType.ACCOUNT, d.id) for d in case.developers]
    else:
        targets = [(TargetType.APP, a.id) for a in case.apps]
    actions = [{"kind": kind, "target_type": t, "target_id": i} for t, i in targets]
    return {
        "actions": actions,
        "reason": placeholders["reason"],
        "statement_of_reasons": reasons,
    }


def preview_extra(
    session: Session, *, case: Case, template: EmailTemplate, now: datetime, settings: Settings
) -> dict[str, Any]:
    """The ``extra`` the lifecycle would pass for ``template``, from the case's records."""
    placeholders: dict[str, Any] = renderer_for(settings).catalog.get("preview", {})
    deadline = case.deadline or now + timedelta(days=settings.deadlines.change_days)
    if template is EmailTemplate.FEATURE_CHANGE_REQUEST:
        request = session.scalar(
            select(ChangeRequest)
            .where(ChangeRequest.case_id == case.id)
            .order_by(ChangeRequest.id.desc())
            .limit(1)
        )
        return {"changes": list(request.changes) if request else placeholders["changes"]}
    if template is EmailTemplate.DEADLINE_REMINDER:
        return {"deadline": deadline}
    if template is EmailTemplate.EXTENSION_GRANTED:
        extended = deadline + timedelta(days=settings.deadlines.extension_days)
        return {"old_deadline": deadline, "new_deadline": extended}
    if template in ENFORCEMENT_TEMPLATES:
        return _enforcement_extra(session, case, template, placeholders, settings=settings, now=now)
    if template in APPEAL_DECISIONS:
        appeal = session.scalar(select(Appeal).where(Appeal.case_id == case.id))
        reason = appeal.decision_reason if appeal and appeal.decision_reason else None
        return {"decision_reason": reason or placeholders["decision_reason"]}
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
