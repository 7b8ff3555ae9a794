"""The embedded default: enforcement writes Caseward's own registry tables."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cases.core.enums import AppStatus, TargetType
from cases.core.errors import NotFound
from cases.core.models import App, Developer
from cases.enforcement.platform.base import APP_SEVERITY, EFFECT, ActionSpec


class RegistryAdapter:
    """Sets app and account status in the caller's transaction; never downgrades a status."""

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

    def apply(self, action: ActionSpec) -> str:
        target = self._target(action)
        prior = str(target.status)
        effect = EFFECT[action.kind]
        if isinstance(target, App) and APP_SEVERITY.index(AppStatus(prior)) >= APP_SEVERITY.index(
            AppStatus(effect)
        ):
            return prior  # already at least this severe: nothing to do
        target.status = effect  # type: ignore[assignment]
        return prior

    def reverse(self, action: ActionSpec, prior_status: str) -> None:
        target = self._target(action)
        if str(target.status) == EFFECT[action.kind]:
            target.status = prior_status  # type: ignore[assignment]
