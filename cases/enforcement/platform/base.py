"""The adapter protocol and the effect each action has on the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cases.core.enums import AccountStatus, ActionKind, AppStatus, TargetType

# The status an action leaves its target in; graduated from mild to severe.
EFFECT: dict[ActionKind, str] = {
    ActionKind.RESTRICT_APP: AppStatus.RESTRICTED,
    ActionKind.REVOKE_TOKEN: AppStatus.TOKEN_REVOKED,
    ActionKind.BAN_APP: AppStatus.BANNED,
    ActionKind.SUSPEND_ACCOUNT: AccountStatus.SUSPENDED,
}
APP_SEVERITY = [AppStatus.ACTIVE, AppStatus.RESTRICTED, AppStatus.TOKEN_REVOKED, AppStatus.BANNED]


@dataclass(frozen=True)
class ActionSpec:
    """One action on one target, with the key that makes repeating it harmless."""

    kind: ActionKind
    target_type: TargetType
    target_id: str
    idempotency_key: str


class PlatformAdapter(Protocol):
    """Applies and reverses actions; both are idempotent (the action's key).

    Raise :class:`~cases.core.errors.PlatformRefused` when the platform will not do it and
    :class:`~cases.core.errors.PlatformUnavailable` when it could not be asked.
    """

    def apply(self, action: ActionSpec) -> str:
        """Apply ``action``; returns the target's status before it."""
        ...

    def reverse(self, action: ActionSpec, restore_status: str) -> None:
        """Lift ``action``: the target's status becomes ``restore_status``, what the actions
        still in force imply (cases/enforcement/standing.py)."""
        ...
