"""Findings to cases: open a case per new finding, or attach it to the open case it overlaps.

A finding whose apps overlap an open case of the same policy is attached to that case (the
lowest id when several overlap): new apps and accounts join it and its evidence is replaced,
with an ``evidence_refreshed`` event, but only when something changed, so running detection
again on the same snapshot writes nothing. Open cases are read with one set-based query
(their apps, developers, evidence and score), not one query per finding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.enums import FindingAction
from cases.core.models import Case, case_apps, case_developers
from cases.core.schemas import CaseCreate
from cases.detection.finding import Finding
from cases.detection.snapshot import Progress
from cases.lifecycle import service
from cases.lifecycle.states import OPEN_STATUSES


class _OpenCase:
    def __init__(self, policy: str, evidence: dict[str, Any], score: float | None) -> None:
        self.policy = policy
        self.evidence = evidence
        self.score = score
        self.app_ids: set[str] = set()
        self.developer_ids: set[str] = set()


def _open_cases(session: Session) -> dict[int, _OpenCase]:
    open_statuses = [s.value for s in OPEN_STATUSES]
    cases: dict[int, _OpenCase] = {}
    for case_id, policy, evidence, score in session.execute(
        select(Case.id, Case.policy, Case.evidence, Case.score).where(
            Case.status.in_(open_statuses)
        )
    ):
        cases[case_id] = _OpenCase(str(policy), dict(evidence or {}), score)
    for case_id, app_id in session.execute(
        select(case_apps.c.case_id, case_apps.c.app_id)
        .join(Case, Case.id == case_apps.c.case_id)
        .where(Case.status.in_(open_statuses))
    ):
        cases[case_id].app_ids.add(app_id)
    for case_id, developer_id in session.execute(
        select(case_developers.c.case_id, case_developers.c.developer_id)
        .join(Case, Case.id == case_developers.c.case_id)
        .where(Case.status.in_(open_statuses))
    ):
        cases[case_id].developer_ids.add(developer_id)
    return cases


def sync_findings(
    session: Session,
    findings: Sequence[Finding],
    *,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> list[Finding]:
    """Store every finding as a case; returns the findings with ``case_id`` and ``action``."""
    report = progress or (lambda _m: None)
    policies = {f.policy.value for f in findings}
    open_cases = _open_cases(session) if findings else {}
    index: dict[tuple[str, str], set[int]] = defaultdict(set)
    for case_id, case in open_cases.items():
        if case.policy in policies:
            for app_id in case.app_ids:
                index[(case.policy, app_id)].add(case_id)
    synced: list[Finding] = []
    for number, finding in enumerate(findings, start=1):
        if number % 500 == 0:
            report(f"cases: {number:,} of {len(findings):,} findings")
        policy = finding.policy.value
        overlapping = set().union(*(index.get((policy, a), set()) for a in finding.app_ids))
        if overlapping:
            case_id = min(overlapping)
            current = open_cases[case_id]
            changed = (
                current.evidence != finding.evidence
                or current.score != finding.score
                or not set(finding.app_ids) <= current.app_ids
                or not set(finding.developer_ids) <= current.developer_ids
            )
            if changed:
                service.refresh_evidence(
                    session,
                    case_id=case_id,
                    evidence=finding.evidence,
                    score=finding.score,
                    app_ids=finding.app_ids,
                    developer_ids=finding.developer_ids,
                    actor=actor,
                    now=now,
                )
                current.evidence, current.score = finding.evidence, finding.score
                current.app_ids.update(finding.app_ids)
                current.developer_ids.update(finding.developer_ids)
            action = FindingAction.REFRESHED if changed else FindingAction.UNCHANGED
        else:
            opened = service.open_case(
                session,
                case_in=CaseCreate(
                    policy=finding.policy,
                    app_ids=finding.app_ids,
                    developer_ids=finding.developer_ids,
                    reason=finding.reason,
                    severity=finding.severity,
                    evidence=finding.evidence,
                    score=finding.score,
                    source="detection",
                ),
                actor=actor,
                now=now,
            )
            case_id, action = opened.id, FindingAction.OPENED
            current = _OpenCase(policy, finding.evidence, finding.score)
            current.app_ids.update(finding.app_ids)
            current.developer_ids.update(finding.developer_ids)
            open_cases[case_id] = current
        for app_id in finding.app_ids:
            index[(policy, app_id)].add(case_id)
        synced.append(finding.model_copy(update={"case_id": case_id, "action": action}))
    return synced
