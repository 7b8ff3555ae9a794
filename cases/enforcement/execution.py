"""Platform actions reach the platform as e-mail reaches the provider: claimed before the
call, recorded after; applying them and lifting them alike.

An action is claimed (``claimed_at``/``claimed_by``) in a transaction that commits before
the platform is called, and the platform's answer is recorded in a transaction of its own.
To apply: ``applying``, then ``applied`` (with the prior status the platform returned) or
back to ``planned`` with the platform's answer. To lift: a decision (a decline, an
overturned appeal) moves the action to ``reversing`` at once, so it is no longer in force for
Caseward, and the platform is then asked to restore the status the other actions in force
imply; ``reversed`` once it has. A crash between a call and its record leaves the claim;
once the lease has passed the action is claimed and called again, and the platform, which
honours each call's idempotency key, answers as it did the first time. A call that failed
may still have reached the platform, so lifting an action that was ever sent (even one
still ``planned``) asks the platform to lift it too. What the outcomes mean for the case
(notices, status) is the lifecycle's business (cases/lifecycle/escalation.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from cases.core.enums import ActionStatus
from cases.core.errors import NotFound, PlatformError, PlatformRefused
from cases.core.models import PlatformAction
from cases.enforcement import standing
from cases.enforcement.platform.base import ActionSpec, PlatformAdapter

A = ActionStatus

# every move an action may make; anything else is a bug, refused loudly
MOVES: dict[ActionStatus, frozenset[ActionStatus]] = {
    A.PLANNED: frozenset({A.APPLYING, A.DECLINED, A.FAILED, A.REVERSING}),
    A.APPLYING: frozenset({A.APPLIED, A.PLANNED, A.FAILED}),
    A.APPLIED: frozenset({A.REVERSING}),
    A.REVERSING: frozenset({A.REVERSED}),
    A.REVERSED: frozenset(),
    A.DECLINED: frozenset(),
    A.FAILED: frozenset(),
}
# an answer from the platform is still due
OUTSTANDING = frozenset({A.PLANNED, A.APPLYING, A.REVERSING})


def move(action: PlatformAction, to: ActionStatus) -> None:
    """The one place an action's status changes."""
    if to not in MOVES[action.status]:
        raise RuntimeError(f"platform action {action.id}: {action.status} -> {to} is not a move")
    action.status = to


def spec(action: PlatformAction) -> ActionSpec:
    return ActionSpec(action.kind, action.target_type, action.target_id, action.idempotency_key)


def describe(action: PlatformAction) -> dict[str, str]:
    """An action as events and e-mail contexts name it."""
    return {
        "kind": action.kind.value,
        "target_type": action.target_type.value,
        "target_id": action.target_id,
    }


def worker_id() -> str:
    """Who holds a claim: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    """A claimed action, ready to be sent to the platform (no ORM object leaves the session)."""

    action_id: int
    case_id: int
    spec: ActionSpec
    final: bool = False  # applying: a refusal is final (the case is enforced and noticed)
    restore_status: str | None = None  # lifting: what the actions still in force imply


@dataclass(frozen=True)
class Outcome:
    """What the platform said to one claim: done (with the prior status) or why not."""

    claim: Claim
    prior_status: str | None = None
    error: str | None = None
    refused: bool = False
    called: bool = True  # false: given back unsent, so the platform cannot have acted on it


def in_flight(action: PlatformAction, *, now: datetime, lease_seconds: float) -> bool:
    """Claimed within the lease: its caller may still be waiting for the platform's answer."""
    return action.claimed_at is not None and action.claimed_at >= now - timedelta(
        seconds=lease_seconds
    )


def claim(
    session: Session,
    actions: Iterable[PlatformAction],
    *,
    case_id: int,
    worker: str,
    now: datetime,
    lease_seconds: float,
    planned: bool = True,
    final: bool = False,
) -> list[Claim]:
    """Claim what needs the platform: the ``planned`` actions (unless ``planned`` is false),
    the ``reversing`` ones, and any whose claim outlived its lease. The caller commits
    before calling the platform. With ``final``, a refusal fails an action for good."""
    claims = []
    for action in actions:
        if action.claimed_at is not None and in_flight(
            action, now=now, lease_seconds=lease_seconds
        ):
            continue
        if action.status is A.REVERSING:
            target = (action.target_type, action.target_id)
            restore = standing.in_force(session, target)
            claims.append(Claim(action.id, case_id, spec(action), restore_status=restore))
        elif action.status is A.APPLYING or (planned and action.status is A.PLANNED):
            if action.status is A.PLANNED:
                move(action, A.APPLYING)
            claims.append(Claim(action.id, case_id, spec(action), final=final))
        else:
            continue
        action.claimed_at, action.claimed_by = now, worker
    return claims


def call(adapter: PlatformAdapter, claimed: Claim) -> Outcome:
    """Ask the platform to apply (or lift) one claimed action; a refusal or an unreachable
    platform is an outcome too."""
    try:
        if claimed.restore_status is not None:
            adapter.reverse(claimed.spec, claimed.restore_status)
            return Outcome(claimed)
        return Outcome(claimed, prior_status=adapter.apply(claimed.spec))
    except (PlatformRefused, NotFound) as exc:
        return Outcome(claimed, error=str(exc), refused=True)
    except PlatformError as exc:
        return Outcome(claimed, error=str(exc))


def not_called(claimed: Claim, reason: str) -> Outcome:
    """A claim given back without calling the platform."""
    return Outcome(claimed, error=reason, called=False)


def record(session: Session, outcome: Outcome, *, now: datetime) -> PlatformAction | None:
    """Store the platform's answer to one claimed action, unless it was settled meanwhile."""
    action = session.get(PlatformAction, outcome.claim.action_id, with_for_update=True)
    lifting = outcome.claim.restore_status is not None
    if action is None or action.status is not (A.REVERSING if lifting else A.APPLYING):
        return action  # settled meanwhile: another worker recorded it after the lease
    action.claimed_at = action.claimed_by = None
    if outcome.called:  # the platform's answer; an unsent claim keeps the previous one
        action.last_error = outcome.error
    if lifting:
        if outcome.error is None:
            move(action, A.REVERSED)
            action.reversed_at = now
        return action
    if outcome.error is not None:
        move(action, A.FAILED if outcome.refused and outcome.claim.final else A.PLANNED)
        return action
    move(action, A.APPLIED)
    action.prior_status, action.applied_at = outcome.prior_status, now
    session.flush()
    standing.mirror(session, (action.target_type, action.target_id))
    return action


def lift(
    session: Session, actions: Iterable[PlatformAction], *, unapplied: ActionStatus
) -> list[PlatformAction]:
    """A decision ends these actions: what the platform applied, or may have (a call that
    was sent and failed), becomes ``reversing`` and stops counting at once; what was never
    sent becomes ``unapplied`` (``declined`` or ``failed``). Returns the applied ones lifted.

    No platform call here: the caller commits, then the actions are claimed and the platform
    told (cases/lifecycle/sweeper.py), so a failing platform delays the reversal, never the
    decision.
    """
    lifted = []
    for action in actions:
        was_applied = action.status is A.APPLIED
        if was_applied or (action.status is A.PLANNED and action.last_error is not None):
            move(action, A.REVERSING)
            action.claimed_at = action.claimed_by = None
            if was_applied:
                lifted.append(action)
        elif action.status is A.PLANNED:
            move(action, unapplied)
    session.flush()
    for target in {(a.target_type, a.target_id) for a in lifted}:
        standing.mirror(session, target)
    return lifted


def settle_unsent(session: Session, actions: Iterable[PlatformAction]) -> None:
    """The enforcement stands but the case has closed: what the platform never confirmed is
    given up (lifted on the platform if it was ever sent, so nothing is in force unnoticed)."""
    lift(session, [a for a in actions if a.status is A.PLANNED], unapplied=A.FAILED)
