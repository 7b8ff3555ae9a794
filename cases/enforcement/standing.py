"""An app's or account's standing: the most severe effect of its actions still in force.

Every case's applied actions count, so overturning one case restores only what no other case
still enforces. Caseward's registry (``apps.status``, ``developers.status``) mirrors this
after each action is applied or reversed, whatever the platform adapter; a reversal asks the
platform to restore the same status; ``caseward doctor`` checks that the two agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.enums import AccountStatus, ActionKind, ActionStatus, AppStatus, TargetType
from cases.core.models import App, Developer, PlatformAction
from cases.enforcement.platform.base import APP_SEVERITY, EFFECT

# each target type's statuses, from no action in force to the most severe
SEVERITY: dict[TargetType, list[str]] = {
    TargetType.APP: [str(s) for s in APP_SEVERITY],
    TargetType.ACCOUNT: [AccountStatus.ACTIVE, AccountStatus.SUSPENDED],
}

Target = tuple[TargetType, str]


def status_from(target_type: TargetType, kinds: Iterable[ActionKind]) -> str:
    """The status actions of ``kinds`` in force leave a target in (none: active)."""
    order = SEVERITY[target_type]
    return max((str(EFFECT[k]) for k in kinds), key=order.index, default=order[0])


def in_force(session: Session, target: Target, *, excluding: int | None = None) -> str:
    """``target``'s status from its applied actions, across cases (but ``excluding``)."""
    query = select(PlatformAction.kind).where(
        PlatformAction.target_type == target[0],
        PlatformAction.target_id == target[1],
        PlatformAction.status == ActionStatus.APPLIED,
    )
    if excluding is not None:
        query = query.where(PlatformAction.id != excluding)
    return status_from(target[0], session.scalars(query))


def mirror(session: Session, target: Target) -> str:
    """Set the registry's status of ``target`` to what its actions in force imply."""
    status = in_force(session, target)
    if target[0] is TargetType.APP:
        app = session.get(App, target[1])
        if app is not None:
            app.status = AppStatus(status)
    else:
        developer = session.get(Developer, target[1])
        if developer is not None:
            developer.status = AccountStatus(status)
    return status


def all_in_force(session: Session) -> dict[Target, str]:
    """Every target with an action in force, and the status those actions imply."""
    kinds: dict[Target, list[ActionKind]] = defaultdict(list)
    for target_type, target_id, kind in session.execute(
        select(PlatformAction.target_type, PlatformAction.target_id, PlatformAction.kind).where(
            PlatformAction.status == ActionStatus.APPLIED
        )
    ):
        kinds[(TargetType(target_type), target_id)].append(kind)
    return {target: status_from(target[0], found) for target, found in kinds.items()}
