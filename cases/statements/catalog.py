"""The statements catalogue (``catalog.toml``, package data, or the file a platform names in
``statements.catalog``): how policies and actions appear in the Transparency Database.

It is checked whole when it loads, values against the database's vocabulary and the facts
templates compiled, so a mistake names its key before any statement is built.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from cases.core.enums import ActionKind, Policy
from cases.core.errors import CasewardError
from cases.statements import vocabulary as v


class CatalogError(CasewardError):
    """The statements catalogue cannot be used; the message names the key."""


def _check(value: str | None, allowed: frozenset[str], what: str) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{value!r} is not a Transparency Database {what}")


class ActionEntry(BaseModel):
    """What one platform action is: a decision on the service, on the account, or both."""

    model_config = ConfigDict(extra="forbid")

    decision_provision: str | None = None
    decision_account: str | None = None

    @model_validator(mode="after")
    def _known(self) -> ActionEntry:
        _check(self.decision_provision, v.DECISION_PROVISION, "decision_provision")
        _check(self.decision_account, v.DECISION_ACCOUNT, "decision_account")
        if self.decision_provision is None and self.decision_account is None:
            raise ValueError("give decision_provision, decision_account or both")
        return self


class PolicyEntry(BaseModel):
    """A policy's category, keywords, ground, explanation and facts."""

    model_config = ConfigDict(extra="forbid")

    category: str
    keywords: list[str] = Field(default_factory=list)
    keyword_other: str | None = Field(None, min_length=1, max_length=500)
    decision_ground: str = v.INCOMPATIBLE
    illegal: Literal["Yes", "No"] | None = None
    ground: str = Field(min_length=1, max_length=500)
    explanation: str = Field(min_length=1, max_length=2000)
    facts: str = Field(min_length=1)

    @model_validator(mode="after")
    def _known(self) -> PolicyEntry:
        _check(self.category, v.CATEGORY, "category")
        for keyword in self.keywords:
            _check(keyword, v.KEYWORD, "keyword")
        _check(self.decision_ground, v.DECISION_GROUND, "decision_ground")
        if self.decision_ground == v.ILLEGAL and self.illegal is not None:
            raise ValueError("'illegal' only applies to a terms-of-service ground")
        return self


class StatementCatalog(BaseModel):
    """The whole catalogue, its facts templates compiled."""

    model_config = ConfigDict(extra="forbid")

    content_type: list[str] = Field(min_length=1)
    facts: str = Field(min_length=1)
    sources: dict[str, str]
    actions: dict[ActionKind, ActionEntry]
    policies: dict[Policy, PolicyEntry]

    _templates: dict[str, Template] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> StatementCatalog:
        for content_type in self.content_type:
            _check(content_type, v.CONTENT_TYPE, "content_type")
        for source_type in self.sources.values():
            _check(source_type, v.SOURCE_TYPE, "source_type")
        if "default" not in self.sources:
            raise ValueError("sources needs a 'default' entry")
        missing = [k.value for k in ActionKind if k not in self.actions]
        missing += [p.value for p in Policy if p not in self.policies]
        if missing:
            raise ValueError(f"no entry for {', '.join(missing)}")
        return self

    def source_type(self, source: str) -> str:
        """The database's source_type of a case opened from ``source``."""
        return self.sources.get(source, self.sources["default"])

    def compile(self) -> None:
        """Compile each policy's facts with the shared part, one template per policy; a
        syntax error names its key."""
        env = SandboxedEnvironment(
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
        )
        try:
            env.parse(self.facts)
        except TemplateError as exc:
            raise CatalogError(f"statements catalogue, facts: {exc}") from exc
        for policy, entry in self.policies.items():
            key = f"policies.{policy.value}.facts"
            try:
                env.parse(entry.facts)
                self._templates[policy.value] = env.from_string(
                    f"{{% set policy_facts %}}{entry.facts}{{% endset %}}{self.facts}"
                )
            except TemplateError as exc:
                raise CatalogError(f"statements catalogue, {key}: {exc}") from exc

    def render_facts(self, policy: str, context: dict[str, Any]) -> str:
        """The decision's facts (the policy's, then the shared part), whitespace folded."""
        try:
            return " ".join(self._templates[policy].render(context).split())
        except TemplateError as exc:
            raise CatalogError(f"statements catalogue, facts of {policy}: {exc}") from exc


def _source(path: Path | None) -> tuple[str, str]:
    if path is not None:
        return str(path), path.read_text(encoding="utf-8")
    resource = files("cases.statements").joinpath("catalog.toml")
    return "cases/statements/catalog.toml", resource.read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def get_catalog(path: Path | None = None) -> StatementCatalog:
    """The catalogue at ``path`` (default: the installed one), checked and compiled once."""
    name, text = _source(path)
    try:
        catalog = StatementCatalog.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{name}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise CatalogError(f"{name}: {where}: {first['msg']}") from exc
    catalog.compile()
    return catalog
