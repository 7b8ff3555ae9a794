"""The policy catalogue (``catalog.toml``, package data): requested changes and graduated
enforcement per policy and severity."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib.resources import files

from pydantic import BaseModel

from cases.core.enums import ActionKind, Policy, Severity


class PolicyEntry(BaseModel):
    title: str
    required_changes: list[str]
    enforcement: dict[Severity, list[ActionKind]]


class Catalog(BaseModel):
    approval_required: list[ActionKind]
    policies: dict[Policy, PolicyEntry]

    def entry(self, policy: str) -> PolicyEntry:
        return self.policies[Policy(policy)]

    def actions_for(self, policy: str, severity: str) -> list[ActionKind]:
        return self.entry(policy).enforcement[Severity(severity)]


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    """The catalogue, read once and validated (a bad file fails loudly at first use)."""
    text = files("cases.enforcement").joinpath("catalog.toml").read_text(encoding="utf-8")
    return Catalog.model_validate(tomllib.loads(text))
