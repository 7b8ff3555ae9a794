"""The embedded default: Caseward's own registry tables are the platform."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cases.core.enums import AccountStatus, AppStatus, TargetType
from cases.core.errors import NotFound
from cases.core.models import App, Developer
from cases.enforcement.platform.base import EFFECT, ActionSpec
from cases.enforcement.standing import SEVERITY


class RegistryAdapter:
    """Sets app and account status in the caller's transaction; an action never lowers one."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _target(self, action: ActionSpec) -> App | Developer:
        target: App | Developer | None = (
            self.session.get(App, action.target_id)
            if action.target_type is TargetType.APP
            else self.session.get(Developer, action.target_id)
        )
        if target is None:
            raise NotFound(f"no {action.target_type} with id {action.target_id}")
        return target

    def _set(self, target: App | Developer, status: str) -> None:
        if isinstance(target, App):
            target.status = AppStatus(status)
        else:
            target.status = AccountStatus(status)

    def apply(self, action: ActionSpec) -> str:
        target = self._target(action)
        prior = str(target.status)
        order = SEVERITY[action.target_type]
        self._set(target, max(prior, str(EFFECT[action.kind]), key=order.index))
        return prior

    def reverse(self, action: ActionSpec, restore_status: str) -> None:
        self._set(self._target(action), restore_status)
