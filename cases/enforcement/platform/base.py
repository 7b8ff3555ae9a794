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
    """Applies and reverses actions. Both are idempotent; both return the prior status."""

    def apply(self, action: ActionSpec) -> str:
        """Apply ``action``; returns the target's status before it (to restore on reversal)."""
        ...

    def reverse(self, action: ActionSpec, prior_status: str) -> None:
        """Undo ``action``, restoring ``prior_status`` if the action's effect is still in place."""
        ...
