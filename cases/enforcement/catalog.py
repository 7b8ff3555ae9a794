"""The policy catalogue (catalog.toml): requested changes and graduated enforcement."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from cases.core.enums import ActionKind, Policy, Severity

CATALOG_PATH = Path(__file__).with_name("catalog.toml")


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
    with CATALOG_PATH.open("rb") as handle:
        return Catalog.model_validate(tomllib.load(handle))
