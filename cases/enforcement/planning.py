"""Enforcement: plan the graduated actions and preview their impact (applying and reversing
them: cases/enforcement/execution.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cases.core.enums import ActionKind, TargetType
from cases.core.models import App, Case, Enforcement, PlatformAction
from cases.enforcement.catalog import get_catalog


class ImpactPreview(BaseModel):
    """What an enforcement would cut off, for ``--dry-run``."""

    case_id: int
    actions: list[dict[str, str]]
    app_ids: list[str]
    account_ids: list[str]
    requests_7d: int
    requires_approval: bool


# one planned action: (kind, target type, target id)
Planned = tuple[ActionKind, TargetType, str]


def planned_actions(case: Case) -> list[Planned]:
    """The actions for the case's policy and severity, mildest first."""
    kinds = get_catalog().actions_for(case.policy, case.severity)
    plan: list[Planned] = []
    for kind in kinds:
        if kind is ActionKind.SUSPEND_ACCOUNT:
            plan.extend((kind, TargetType.ACCOUNT, d.id) for d in case.developers)
        else:
            plan.extend((kind, TargetType.APP, a.id) for a in case.apps)
    return plan


def needs_approval(plan: list[Planned]) -> bool:
    required = set(get_catalog().approval_required)
    return any(kind in required for kind, _, _ in plan)


def create(
    session: Session,
    *,
    case: Case,
    reason: str,
    urgent: bool,
    approved_by: str | None,
    now: datetime,
) -> Enforcement:
    """The enforcement decision and its planned actions (nothing is applied yet)."""
    plan = planned_actions(case)
    enforcement = Enforcement(
        case_id=case.id,
        reason=reason,
        urgent=urgent,
        requires_approval=needs_approval(plan) or case.lead_approval,
        approved_by=approved_by,
        created_at=now,
    )
    session.add(enforcement)
    session.flush()
    session.add_all(
        PlatformAction(
            enforcement_id=enforcement.id,
            kind=kind,
            target_type=target_type,
            target_id=target_id,
            idempotency_key=f"case-{case.id}-{kind.value}-{target_type}-{target_id}",
        )
        for kind, target_type, target_id in plan
    )
    session.flush()
    return enforcement


def get_for_cases(session: Session, *, case_ids: Sequence[int]) -> list[Enforcement]:
    """The enforcement decisions of ``case_ids``, actions loaded (one query for a batch)."""
    query = (
        select(Enforcement)
        .options(selectinload(Enforcement.actions))
        .where(Enforcement.case_id.in_(case_ids))
    )
    return list(session.scalars(query))


def get_for_case(session: Session, *, case_id: int) -> Enforcement | None:
    found = get_for_cases(session, case_ids=[case_id])
    return found[0] if found else None


def preview_impact(session: Session, *, case: Case) -> ImpactPreview:
    """Which apps and accounts the case's enforcement would cut off, and their recent traffic."""
    existing = get_for_case(session, case_id=case.id)
    plan = (
        [(a.kind, a.target_type, a.target_id) for a in existing.actions]
        if existing
        else planned_actions(case)
    )
    app_ids = {t for _, tt, t in plan if tt is TargetType.APP}
    account_ids = {t for _, tt, t in plan if tt is TargetType.ACCOUNT}
    if account_ids:  # a suspended account takes all its apps with it
        app_ids |= set(session.scalars(select(App.id).where(App.developer_id.in_(account_ids))))
    traffic = session.scalar(
        select(func.coalesce(func.sum(App.requests_7d), 0)).where(App.id.in_(app_ids))
    )
    return ImpactPreview(
        case_id=case.id,
        actions=[{"kind": k.value, "target_type": tt.value, "target_id": t} for k, tt, t in plan],
        app_ids=sorted(app_ids),
        account_ids=sorted(account_ids),
        requests_7d=int(traffic or 0),
        requires_approval=(
            existing.requires_approval if existing else needs_approval(plan) or case.lead_approval
        ),
    )
