"""Findings to cases: open a case per new finding, or attach it to the open case it overlaps.

A finding whose apps overlap an open case of the same policy is attached to that case (the
lowest id when several overlap): new apps and accounts join it and its evidence is replaced,
with an ``evidence_refreshed`` event, but only when something changed, so running detection
again on the same snapshot writes nothing. Open cases are read with one set-based query
(their apps, developers, evidence and score), not one query per finding, and new cases are
written in batches (``service.open_cases``), not one flush each.
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

OPEN_BATCH = 1000  # new cases written per ``service.open_cases`` call


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


def _case_in(finding: Finding) -> CaseCreate:
    return CaseCreate(
        policy=finding.policy,
        app_ids=finding.app_ids,
        developer_ids=finding.developer_ids,
        reason=finding.reason,
        severity=finding.severity,
        evidence=finding.evidence,
        score=finding.score,
        source="detection",
    )


class _Sync:
    """One run's bookkeeping: open cases by (policy, app), and new cases not yet written.

    New cases are written in batches by ``service.open_cases``; a finding that overlaps
    one still waiting writes the batch first, so it attaches to that case as it would
    had each case been opened on its own.
    """

    def __init__(
        self, session: Session, open_cases: dict[int, _OpenCase], *, actor: str, now: datetime
    ) -> None:
        self.session, self.actor, self.now = session, actor, now
        self.open_cases = open_cases
        self.index: dict[tuple[str, str], set[int]] = defaultdict(set)
        for case_id, case in open_cases.items():
            self.add_to_index(case_id, case)
        self.waiting: list[tuple[int, Finding]] = []  # (position in ``synced``, finding)
        self.waiting_keys: set[tuple[str, str]] = set()
        self.synced: list[Finding] = []

    def add_to_index(self, case_id: int, case: _OpenCase) -> None:
        for app_id in case.app_ids:
            self.index[(case.policy, app_id)].add(case_id)

    def open_waiting(self) -> None:
        if not self.waiting:
            return
        ids = service.open_cases(
            self.session,
            cases_in=[_case_in(f) for _pos, f in self.waiting],
            actor=self.actor,
            now=self.now,
        )
        for (position, finding), case_id in zip(self.waiting, ids, strict=True):
            case = _OpenCase(finding.policy.value, finding.evidence, finding.score)
            case.app_ids.update(finding.app_ids)
            case.developer_ids.update(finding.developer_ids)
            self.open_cases[case_id] = case
            self.add_to_index(case_id, case)
            self.synced[position] = finding.model_copy(
                update={"case_id": case_id, "action": FindingAction.OPENED}
            )
        self.waiting.clear()
        self.waiting_keys.clear()

    def add(self, finding: Finding) -> None:
        policy = finding.policy.value
        keys = {(policy, a) for a in finding.app_ids}
        if keys & self.waiting_keys:
            self.open_waiting()
        overlapping = set().union(*(self.index.get(k, set()) for k in keys))
        if not overlapping:
            self.waiting.append((len(self.synced), finding))
            self.waiting_keys.update(keys)
            self.synced.append(finding)
            if len(self.waiting) >= OPEN_BATCH:
                self.open_waiting()
            return
        case_id = min(overlapping)
        current = self.open_cases[case_id]
        changed = (
            current.evidence != finding.evidence
            or current.score != finding.score
            or not set(finding.app_ids) <= current.app_ids
            or not set(finding.developer_ids) <= current.developer_ids
        )
        if changed:
            service.refresh_evidence(
                self.session,
                case_id=case_id,
                evidence=finding.evidence,
                score=finding.score,
                app_ids=finding.app_ids,
                developer_ids=finding.developer_ids,
                actor=self.actor,
                now=self.now,
            )
            current.evidence, current.score = finding.evidence, finding.score
            current.app_ids.update(finding.app_ids)
            current.developer_ids.update(finding.developer_ids)
            self.add_to_index(case_id, current)
        action = FindingAction.REFRESHED if changed else FindingAction.UNCHANGED
        self.synced.append(finding.model_copy(update={"case_id": case_id, "action": action}))


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
    open_cases = {
        case_id: case
        for case_id, case in (_open_cases(session) if findings else {}).items()
        if case.policy in policies
    }
    sync = _Sync(session, open_cases, actor=actor, now=now)
    for number, finding in enumerate(findings, start=1):
        if number % OPEN_BATCH == 0:
            report(f"cases: {number:,} of {len(findings):,} findings")
        sync.add(finding)
    sync.open_waiting()
    return sync.synced
