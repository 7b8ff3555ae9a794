"""A case's fields are a projection of its events; this module is that projection.

The live write path and the replay of the log both go through :func:`apply`, so the event
log alone rebuilds a case. An event's ``data["set"]`` holds the fields it changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from cases.core.clock import parse_instant
from cases.core.enums import CaseOutcome, CaseStatus

DATETIME_FIELDS = frozenset({"deadline", "next_reminder_at"})
PROJECTED_FIELDS = (
    "severity",
    "score",
    "evidence",
    "assignee",
    "deadline",
    "next_reminder_at",
    "extension_granted",
    "delivery_blocked",
    "enforcement_approved_by",
    "urgent",
    "outcome",
    "prior_strikes",
    "change_days",
    "lead_approval",
)


class Projection(Protocol):
    """Anything carrying the projected case fields (the ORM Case or a replay snapshot)."""

    status: CaseStatus
    status_changed_at: datetime


def encode(changes: dict[str, Any]) -> dict[str, Any]:
    """Field changes as JSON-safe data for the event log."""
    unknown = set(changes) - set(PROJECTED_FIELDS)
    if unknown:
        raise ValueError(f"not projected case fields: {sorted(unknown)}")
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in changes.items()
    }


def _decoded(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in DATETIME_FIELDS:
        return parse_instant(value)
    return CaseOutcome(value) if key == "outcome" else value


def decode(changes: dict[str, Any]) -> dict[str, Any]:
    """Field changes read back from the event log: instants and the outcome typed again."""
    return {key: _decoded(key, value) for key, value in changes.items()}


def apply(target: Any, *, to_status: str, at: datetime, changes: dict[str, Any]) -> None:
    """Apply one event's effect to ``target``."""
    status = CaseStatus(to_status)
    if getattr(target, "status", None) != status:
        target.status = status
        target.status_changed_at = at
    for key, value in decode(changes).items():
        setattr(target, key, value)


@dataclass
class Snapshot:
    """What replaying a case's events yields; compared field by field with the live case."""

    status: CaseStatus | None = None
    status_changed_at: datetime | None = None
    severity: str | None = None
    score: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    assignee: str | None = None
    deadline: datetime | None = None
    next_reminder_at: datetime | None = None
    extension_granted: bool = False
    delivery_blocked: bool = False
    enforcement_approved_by: str | None = None
    urgent: bool = False
    outcome: CaseOutcome | None = None
    prior_strikes: dict[str, Any] = field(default_factory=dict)
    change_days: int | None = None
    lead_approval: bool = False

    @classmethod
    def of(cls, case: Any) -> Snapshot:
        """The same fields read off a live case."""
        return cls(**{f.name: getattr(case, f.name) for f in fields(cls)})


class EventLike(Protocol):
    at: datetime
    to_status: str
    data: dict[str, Any]


def replay(events: Iterable[EventLike]) -> Snapshot:
    """Rebuild a case's state from its events, oldest first."""
    snapshot = Snapshot()
    for event in events:
        apply(snapshot, to_status=event.to_status, at=event.at, changes=event.data.get("set", {}))
    return snapshot
