"""A finding: one policy, the apps and accounts involved, a score and checkable evidence."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from cases.core.enums import FindingAction, Policy, Severity


def jsonable(value: Any) -> Any:
    """Evidence as plain JSON values: ISO timestamps (UTC, ``Z``), rounded floats."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text.replace("+00:00", "Z") if value.tzinfo else text + "Z"
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


class Finding(BaseModel):
    """What a detector reports; ``case_id`` is set once the finding is stored as a case."""

    policy: Policy
    app_ids: list[str] = Field(min_length=1)
    developer_ids: list[str] = Field(min_length=1)
    score: float
    severity: Severity
    reason: str
    evidence: dict[str, Any]
    case_id: int | None = None
    action: FindingAction | None = None  # set once synced

    @field_validator("app_ids", "developer_ids")
    @classmethod
    def _sorted_unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("evidence")
    @classmethod
    def _plain(cls, value: dict[str, Any]) -> dict[str, Any]:
        plain: dict[str, Any] = json.loads(json.dumps(jsonable(value)))
        return plain

    @field_validator("score")
    @classmethod
    def _round(cls, value: float) -> float:
        return round(value, 4)

    def to_contract(self) -> dict[str, Any]:
        """The JSON object of docs/platform-data.md ("Detection output")."""
        return {
            "policy": self.policy.value,
            "app_ids": self.app_ids,
            "developer_ids": self.developer_ids,
            "score": self.score,
            "evidence": self.evidence,
            "case_id": self.case_id,
        }


def severity_for(ratio: float, high_factor: float) -> Severity:
    """Severity from how far a score is above its policy's threshold (``ratio`` >= 1).

    High from ``high_factor`` times the threshold, medium from its square root (about 2.2x
    with the default 5), low below that.
    """
    if ratio >= high_factor:
        return Severity.HIGH
    if ratio >= high_factor**0.5:
        return Severity.MEDIUM
    return Severity.LOW
