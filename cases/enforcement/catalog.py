"""The policy catalogue (``catalog.toml``, package data): requested changes, graduated
enforcement and triage rules per policy and severity."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cases.core.enums import ActionKind, Policy, Severity


class TriageRule(BaseModel):
    """A lead's triage decision taken by rule: confirm a case scored at least
    ``min_score``, or dismiss one scored below ``below_score``, for the listed severities."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")
    decision: Literal["confirm", "dismiss"]
    severities: list[Severity] = Field(default_factory=lambda: list(Severity), min_length=1)
    min_score: float | None = None
    below_score: float | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> TriageRule:
        wanted = "min_score" if self.decision == "confirm" else "below_score"
        other = "below_score" if wanted == "min_score" else "min_score"
        if getattr(self, wanted) is None or getattr(self, other) is not None:
            raise ValueError(f"a {self.decision} rule has {wanted} (and no {other})")
        return self

    def matches(self, severity: str, score: float | None) -> bool:
        """Whether the rule decides a case of ``severity`` scored ``score`` (never unscored)."""
        if score is None or Severity(severity) not in self.severities:
            return False
        if self.min_score is not None:
            return score >= self.min_score
        return self.below_score is not None and score < self.below_score


class RepeatOffence(BaseModel):
    """What a case of a developer with at least ``strikes`` strikes gets: a severity raised
    by ``raise_severity`` levels, a shorter change deadline, a lead's approval for any
    enforcement."""

    model_config = ConfigDict(extra="forbid")

    strikes: int = Field(ge=1)
    raise_severity: int = Field(0, ge=0, le=2)
    change_days: int | None = Field(None, ge=1, le=3650)
    lead_approval: bool = False


class PolicyEntry(BaseModel):
    title: str
    required_changes: list[str]
    enforcement: dict[Severity, list[ActionKind]]
    triage: list[TriageRule] = Field(default_factory=list)


class Catalog(BaseModel):
    approval_required: list[ActionKind]
    policies: dict[Policy, PolicyEntry]
    repeat_offenders: list[RepeatOffence] = Field(default_factory=list)

    def entry(self, policy: str) -> PolicyEntry:
        return self.policies[Policy(policy)]

    def actions_for(self, policy: str, severity: str) -> list[ActionKind]:
        return self.entry(policy).enforcement[Severity(severity)]

    def repeat_offence(self, strikes: int) -> RepeatOffence | None:
        """The consequences for a developer with ``strikes`` strikes: the line with the most
        strikes that is not more than theirs, or None."""
        lines = [r for r in self.repeat_offenders if r.strikes <= strikes]
        return max(lines, key=lambda r: r.strikes, default=None)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> Catalog:
        names = [r.name for e in self.policies.values() for r in e.triage]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"triage rule names must be unique: {', '.join(repeated)}")
        return self


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    """The catalogue, read once and validated (a bad file fails loudly at first use)."""
    text = files("cases.enforcement").joinpath("catalog.toml").read_text(encoding="utf-8")
    return Catalog.model_validate(tomllib.loads(text))
