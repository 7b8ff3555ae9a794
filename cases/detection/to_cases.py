"""Findings to cases: open a case per new finding, or attach it to the open cases it overlaps.

A finding whose apps overlap open cases of the same policy refreshes their evidence (beside
what leads recorded, with an ``evidence_refreshed`` event, only when something changed, so
running detection again on the same snapshot writes nothing). Apps and accounts no overlapping
case holds join the first of them whose outreach has not gone out; when every one has had its
outreach, they get a case of their own, linked to the first, so they are told and given their
full deadlines before anything is enforced against them. Open cases are read with one
set-based query (their status, apps, developers, evidence and score), not one per finding, and
new cases are written in batches (``service.open_cases``), not one flush each.

A finding that overlaps no open case but falls within a case a lead dismissed recently (same
policy, no app or account the dismissed case did not hold, a score not much higher) opens
nothing: a false positive a lead has judged does not come back with every snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus, FindingAction
from cases.core.models import App, Case, case_apps, case_developers
from cases.core.schemas import CaseCreate
from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding
from cases.detection.snapshot import Progress
from cases.lifecycle import service
from cases.lifecycle.states import BEFORE_OUTREACH, OPEN_STATUSES

OPEN_BATCH = 1000  # new cases written per ``service.open_cases`` call


class _KnownCase:
    def __init__(
        self, policy: str, status: CaseStatus, evidence: dict[str, Any], score: float | None
    ) -> None:
        self.policy = policy
        self.status = status
        self.evidence = evidence
        self.score = score
        self.app_ids: set[str] = set()
        self.developer_ids: set[str] = set()


def _cases(session: Session, where: ColumnElement[bool]) -> dict[int, _KnownCase]:
    """The cases ``where`` selects, with their apps and accounts, in three set-based queries."""
    cases: dict[int, _KnownCase] = {}
    for case_id, policy, status, evidence, score in session.execute(
        select(Case.id, Case.policy, Case.status, Case.evidence, Case.score).where(where)
    ):
        cases[case_id] = _KnownCase(str(policy), CaseStatus(status), dict(evidence or {}), score)
    for case_id, app_id in session.execute(
        select(case_apps.c.case_id, case_apps.c.app_id)
        .join(Case, Case.id == case_apps.c.case_id)
        .where(where)
    ):
        cases[case_id].app_ids.add(app_id)
    for case_id, developer_id in session.execute(
        select(case_developers.c.case_id, case_developers.c.developer_id)
        .join(Case, Case.id == case_developers.c.case_id)
        .where(where)
    ):
        cases[case_id].developer_ids.add(developer_id)
    return cases


def _case_in(
    finding: Finding,
    app_ids: Sequence[str] | None = None,
    developer_ids: Sequence[str] | None = None,
) -> CaseCreate:
    return CaseCreate(
        policy=finding.policy,
        app_ids=list(finding.app_ids if app_ids is None else app_ids),
        developer_ids=list(finding.developer_ids if developer_ids is None else developer_ids),
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
        self,
        session: Session,
        open_cases: dict[int, _KnownCase],
        dismissed: dict[int, _KnownCase],
        *,
        score_rise: float,
        actor: str,
        now: datetime,
    ) -> None:
        self.session, self.actor, self.now = session, actor, now
        self.cases = open_cases
        self.index: dict[tuple[str, str], set[int]] = defaultdict(set)
        for case_id, case in open_cases.items():
            self.remember(case_id, case, (), ())
        self.dismissed, self.score_rise = dismissed, score_rise
        self.dismissed_index: dict[tuple[str, str], set[int]] = defaultdict(set)
        for case_id, case in dismissed.items():
            for app_id in case.app_ids:
                self.dismissed_index[(case.policy, app_id)].add(case_id)
        self.waiting: list[tuple[int, Finding]] = []  # (position in ``synced``, finding)
        self.waiting_keys: set[tuple[str, str]] = set()
        self.synced: list[Finding] = []

    def remember(
        self, case_id: int, case: _KnownCase, app_ids: Sequence[str], developer_ids: Sequence[str]
    ) -> None:
        self.cases[case_id] = case
        case.app_ids.update(app_ids)
        case.developer_ids.update(developer_ids)
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
            case = _KnownCase(
                finding.policy.value, CaseStatus.OPENED, finding.evidence, finding.score
            )
            self.remember(case_id, case, finding.app_ids, finding.developer_ids)
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
        overlapping = sorted(set().union(*(self.index.get(k, set()) for k in keys)))
        if not overlapping and (dismissed := self.dismissed_as(finding)) is not None:
            update = {"case_id": dismissed, "action": FindingAction.DISMISSED}
            self.synced.append(finding.model_copy(update=update))
            return
        if not overlapping:
            self.waiting.append((len(self.synced), finding))
            self.waiting_keys.update(keys)
            self.synced.append(finding)
            if len(self.waiting) >= OPEN_BATCH:
                self.open_waiting()
            return
        case_id, action = self.attach(finding, overlapping)
        self.synced.append(finding.model_copy(update={"case_id": case_id, "action": action}))

    def dismissed_as(self, finding: Finding) -> int | None:
        """The recently dismissed case that held all of ``finding`` at a similar score."""
        keys = {(finding.policy.value, a) for a in finding.app_ids}
        for case_id in sorted(set().union(*(self.dismissed_index.get(k, set()) for k in keys))):
            case = self.dismissed[case_id]
            held = set(finding.app_ids) <= case.app_ids
            held &= set(finding.developer_ids) <= case.developer_ids
            similar = case.score is None or finding.score <= case.score * (1 + self.score_rise)
            if held and similar:
                return case_id
        return None

    def open_linked(
        self, finding: Finding, app_ids: Sequence[str], developer_ids: Sequence[str], link: int
    ) -> int:
        """A case of their own for apps and accounts found after ``link``'s outreach."""
        opened = service.open_case(
            self.session,
            case_in=_case_in(finding, app_ids, developer_ids),
            actor=self.actor,
            now=self.now,
            linked_case_id=link,
        )
        current = _KnownCase(finding.policy.value, opened.status, finding.evidence, finding.score)
        self.remember(opened.id, current, app_ids, developer_ids)
        return opened.id

    def newcomers(self, finding: Finding, overlapping: list[int]) -> tuple[list[str], list[str]]:
        """The finding's apps and accounts no overlapping case holds; a new account's apps
        come with it, and a new app's owner with the app."""
        held_apps = set().union(*(self.cases[c].app_ids for c in overlapping))
        held_devs = set().union(*(self.cases[c].developer_ids for c in overlapping))
        new_apps = {a for a in finding.app_ids if a not in held_apps}
        new_devs = set(finding.developer_ids) - held_devs
        if not new_apps and not new_devs:
            return [], []
        owners = {
            app_id: owner
            for app_id, owner in self.session.execute(
                select(App.id, App.developer_id).where(App.id.in_(finding.app_ids))
            )
        }
        if not new_apps:  # accounts only: their own apps of the finding
            new_apps = {a for a in finding.app_ids if owners.get(a) in new_devs}
        if not new_apps:
            return [], []
        new_devs |= {owners[a] for a in new_apps if a in owners}
        return sorted(new_apps), sorted(new_devs)

    def attach(self, finding: Finding, overlapping: list[int]) -> tuple[int, FindingAction]:
        """Refresh the overlapping cases; newcomers join one before its outreach, or get a
        linked case of their own."""
        new_apps, new_devs = self.newcomers(finding, overlapping)
        joins = next((c for c in overlapping if self.cases[c].status in BEFORE_OUTREACH), None)
        linked = None
        if new_apps and joins is None:
            linked = self.open_linked(finding, new_apps, new_devs, link=overlapping[0])
        refreshed = False
        for case_id in overlapping:
            current = self.cases[case_id]
            joining = (new_apps, new_devs) if case_id == joins else ([], [])
            link = linked if case_id == overlapping[0] else None
            evidence = service.refreshed_evidence(current.evidence, finding.evidence)
            unchanged = evidence == current.evidence and finding.score == current.score
            if unchanged and not joining[0] and link is None:
                continue
            service.refresh_evidence(
                self.session,
                case_id=case_id,
                evidence=finding.evidence,
                score=finding.score,
                app_ids=joining[0],
                developer_ids=joining[1],
                actor=self.actor,
                now=self.now,
                reason=(
                    f"new evidence from detection; apps and accounts found after its outreach "
                    f"are in case {link}"
                    if link is not None
                    else "new evidence from detection"
                ),
                linked_case_id=link,
            )
            current.evidence, current.score = evidence, finding.score
            self.remember(case_id, current, *joining)
            refreshed = True
        if linked is not None:
            return linked, FindingAction.OPENED
        return overlapping[0], FindingAction.REFRESHED if refreshed else FindingAction.UNCHANGED


def sync_findings(
    session: Session,
    findings: Sequence[Finding],
    *,
    settings: DetectionSettings,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> list[Finding]:
    """Store every finding as a case; returns the findings with ``case_id`` and ``action``."""
    report = progress or (lambda _m: None)
    if not findings:
        return []
    policies = {f.policy.value for f in findings}
    of_policies = Case.policy.in_(policies)
    open_cases = _cases(session, of_policies & Case.status.in_([s.value for s in OPEN_STATUSES]))
    since = now - timedelta(days=settings.dismissal_memory_days)
    dismissed = _cases(
        session,
        of_policies
        & (Case.status == CaseStatus.DISMISSED.value)
        & (Case.status_changed_at >= since),
    )
    sync = _Sync(
        session,
        open_cases,
        dismissed,
        score_rise=settings.dismissal_score_rise,
        actor=actor,
        now=now,
    )
    for number, finding in enumerate(findings, start=1):
        if number % OPEN_BATCH == 0:
            report(f"cases: {number:,} of {len(findings):,} findings")
        sync.add(finding)
    sync.open_waiting()
    return sync.synced
