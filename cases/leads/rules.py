"""Triage rules: the policy catalogue's rules that confirm or dismiss cases for the leads.

A rule (``[[policies.<policy>.triage]]`` in ``cases/enforcement/catalog.toml``) decides as
actor ``rule:<name>``, a system identity nobody can claim, through the same operation as a
lead's decision, with a reason naming the rule and its threshold and event data recording
that the decision was automated (``{"automated": true, "rule": ..., "threshold": ...}``;
statements of reasons recognise the ``rule:`` actor).

Rules run after detection, in its unit of work (:func:`triage`): detection opens or
refreshes the cases of a snapshot's findings, then each of those cases still ``opened`` is
decided by the first rule of its policy that matches its severity and score; a case no rule
matches waits for a lead. They are off unless ``triage.enabled`` is set;
:func:`rule_for` lets ``caseward rules check`` show what they would do beforehand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus, Severity
from cases.core.identity import rule_actor
from cases.core.models import Case
from cases.core.settings import get_settings
from cases.enforcement import strikes
from cases.enforcement.catalog import TriageRule, get_catalog
from cases.leads import bulk
from cases.lifecycle import operations, service
from cases.lifecycle.states import Op


def rule_for(policy: str, severity: str, score: float | None) -> TriageRule | None:
    """The rule that decides a case of ``policy`` with ``severity`` and ``score``: the
    first of the policy that matches, or None (a lead decides)."""
    return next((r for r in get_catalog().entry(policy).triage if r.matches(severity, score)), None)


def threshold(rule: TriageRule) -> str:
    """``score >= 20`` or ``score < 2.2``."""
    if rule.min_score is not None:
        return f"score >= {rule.min_score:g}"
    return f"score < {rule.below_score:g}"


def reason_for(rule: TriageRule, *, policy: str, severity: str, score: float) -> str:
    """What the case's timeline says: the rule, its threshold and the case's own values."""
    return (
        f"triage rule {rule.name} ({rule.decision} {policy} cases of {severity} severity "
        f"when {threshold(rule)}): this case scored {score:g}"
    )


class TriageReport(BaseModel):
    """What the rules did after one detection run."""

    enabled: bool
    decided: dict[str, list[int]] = Field(default_factory=dict)  # rule name -> case ids
    refused: dict[int, str] = Field(default_factory=dict)
    waiting: list[int] = Field(default_factory=list)  # opened cases no rule matched

    def counts(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in self.decided.items()}


def _decide(
    session: Session, case: Case, rule: TriageRule, now: datetime, prior: dict[str, int]
) -> Case:
    score = float(case.score or 0.0)
    actor = rule_actor(rule.name)
    severity = Severity(case.severity).value
    reason = reason_for(rule, policy=case.policy, severity=severity, score=score)
    data = {"automated": True, "rule": rule.name, "threshold": threshold(rule), "score": score}
    if rule.decision == "confirm":
        return operations._confirm(
            session, case=case, actor=actor, reason=reason, now=now, prior=prior, data=data
        )
    return operations._dismiss(session, case=case, actor=actor, reason=reason, now=now, data=data)


def _prepare(chosen: dict[int, TriageRule]) -> bulk.Prepare:
    """Each case decided by its rule; the batch's strikes read once (for confirmations)."""

    def prepare(
        session: Session, cases: Sequence[Case], inputs: bulk.DecisionInput
    ) -> bulk.PerCase:
        prior = strikes.for_cases(session, [c.id for c in cases], now=inputs.now)
        return lambda case: _decide(
            session, case, chosen[case.id], inputs.now, prior.get(case.id, {})
        )

    return prepare


def triage(session: Session, case_ids: Iterable[int], *, now: datetime) -> TriageReport:
    """Decide, by rule, every case of ``case_ids`` still ``opened``; in the caller's unit
    of work. Nothing happens when rules are off."""
    if not get_settings().triage.enabled:
        return TriageReport(enabled=False)
    wanted = sorted(set(case_ids))
    chosen: dict[int, TriageRule] = {}
    waiting: list[int] = []
    for start in range(0, len(wanted), service.ID_CHUNK):
        rows = session.execute(
            select(Case.id, Case.policy, Case.severity, Case.score).where(
                Case.id.in_(wanted[start : start + service.ID_CHUNK]),
                Case.status == CaseStatus.OPENED,
            )
        )
        for case_id, policy, severity, score in rows:
            rule = rule_for(policy, severity, score)
            if rule is None:
                waiting.append(case_id)
            else:
                chosen[case_id] = rule
    decision = bulk.BulkDecision(
        (Op.CONFIRM, Op.DISMISS), lambda: Case.status == CaseStatus.OPENED, _prepare(chosen)
    )
    outcome = bulk.decide_in_session(
        session, sorted(chosen), decision=decision, inputs=bulk.DecisionInput("rules", now)
    )
    decided: dict[str, list[int]] = {}
    for case_id in outcome.done:
        decided.setdefault(chosen[case_id].name, []).append(case_id)
    return TriageReport(enabled=True, decided=decided, refused=outcome.refused, waiting=waiting)


class RuleVerdict(BaseModel):
    """What the rules would do to one finding (``rules check``)."""

    policy: str
    app_ids: list[str]
    severity: str
    score: float
    rule: str | None
    decision: str | None  # confirm, dismiss, or None: a lead decides


def verdicts(findings: Sequence[Any]) -> list[RuleVerdict]:
    """The rule that would decide each finding (anything with ``policy``, ``app_ids``,
    ``severity`` and ``score``), changing nothing."""
    found = []
    for finding in findings:
        policy, severity = str(finding.policy), str(finding.severity)
        rule = rule_for(policy, severity, finding.score)
        found.append(
            RuleVerdict(
                policy=policy,
                app_ids=list(finding.app_ids),
                severity=severity,
                score=finding.score,
                rule=rule.name if rule else None,
                decision=rule.decision if rule else None,
            )
        )
    return found
