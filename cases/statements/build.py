"""Statements from Caseward's records: one per enforcement decision and subject.

A *decision* is an executed enforcement; its *subjects* are the apps and accounts it
restricted, each one statement. What a statement may say is gathered set-based (a few
queries per thousand decisions) as ids, dates, numbers and actors only: no handle, name,
e-mail address, host or free text written by a developer or a reviewer reaches it, so no
statement can carry personal data. Its ``puid`` is the prefix, the case and the subject's
first action (``caseward-case-12-action-34``): the same decision always has the same puid,
and once a statement has been claimed for submission its stored puid is kept for good.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.enums import ActionKind, Policy, SubmissionStatus, TargetType
from cases.core.models import (
    App,
    Case,
    CaseEvent,
    ChangeRequest,
    Developer,
    Enforcement,
    PlatformAction,
    StatementSubmission,
    case_apps,
    case_developers,
)
from cases.core.settings import Settings
from cases.email.context import policy_link
from cases.email.render import get_renderer
from cases.lifecycle.states import Op
from cases.lifecycle.write import SYSTEM
from cases.statements import vocabulary as v
from cases.statements.automation import decision_automation, detected_automatically
from cases.statements.catalog import StatementCatalog, get_catalog

CHUNK = 1000  # decisions per round of queries
SEVERITY = {kind: rank for rank, kind in enumerate(ActionKind)}  # declared mild to severe


@dataclass(frozen=True)
class Decision:
    """An executed enforcement, as much of it as a statement may tell."""

    enforcement_id: int
    case_id: int
    policy: str
    source: str
    evidence: Mapping[str, float | int]  # the detector's numeric findings only
    urgent: bool
    confirmed_by: str | None
    decided_by: str
    decided_at: datetime
    notified_at: datetime | None
    due_at: datetime | None
    apps: int
    accounts: int
    reversed_at: datetime | None


@dataclass(frozen=True)
class Subject:
    """One app or account the decision restricted."""

    action_id: int  # the first action on this target: the statement's identity
    kind: ActionKind  # the most severe action on it
    target_type: TargetType
    applied_at: datetime
    content_at: datetime | None  # when the app (or account) was registered
    puid: str | None  # the puid already stored for it, if it was ever claimed
    submission: SubmissionStatus | None = None  # where its submission stands, if anywhere


def numeric_evidence(evidence: Mapping[str, Any] | None) -> dict[str, float | int]:
    """The evidence values a statement may quote: top-level numbers, nothing else."""
    return {
        key: value
        for key, value in (evidence or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def puid_for(prefix: str, case_id: int, action_id: int) -> str:
    return f"{prefix}-case-{case_id}-action-{action_id}"


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value is not None else None


def facts_context(decision: Decision) -> dict[str, Any]:
    """What the catalogue's facts templates are given: numbers, dates and yes/no only."""
    return {
        "evidence": decision.evidence,
        "apps": decision.apps,
        "accounts": decision.accounts,
        "detected": detected_automatically(decision.source),
        "urgent": decision.urgent,
        "approved": decision.decided_by != SYSTEM,
        "notified_on": _day(decision.notified_at),
        "due_on": _day(decision.due_at),
        "decided_on": _day(decision.decided_at),
    }


class StatementBuilder:
    """Builds statements in the Transparency Database's format from decisions and subjects.

    What every statement of a policy shares is built once; a statement is that, plus the
    decision's facts and the subject's action and dates.
    """

    def __init__(self, settings: Settings, catalog: StatementCatalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or get_catalog(settings.statements.catalog)
        self.email_catalog = get_renderer(settings.email.template_dir).catalog
        self._shared: dict[str, dict[str, Any]] = {}

    def facts(self, decision: Decision) -> str:
        return self.catalog.render_facts(decision.policy, facts_context(decision))

    def shared(self, policy: str) -> dict[str, Any]:
        """The fields every statement of ``policy`` has in common."""
        if policy not in self._shared:
            entry = self.catalog.policies[Policy(policy)]
            fields: dict[str, Any] = {"decision_ground": entry.decision_ground}
            fields["decision_ground_reference_url"] = policy_link(
                policy, self.settings, self.email_catalog
            )
            if entry.decision_ground == v.ILLEGAL:
                fields["illegal_content_legal_ground"] = entry.ground
                fields["illegal_content_explanation"] = entry.explanation
            else:
                fields["incompatible_content_ground"] = entry.ground
                fields["incompatible_content_explanation"] = entry.explanation
                if entry.illegal is not None:
                    fields["incompatible_content_illegal"] = entry.illegal
            fields["content_type"] = list(self.catalog.content_type)
            fields["category"] = entry.category
            if entry.keywords:
                fields["category_specification"] = list(entry.keywords)
                if v.KEYWORD_OTHER in entry.keywords and entry.keyword_other:
                    fields["category_specification_other"] = entry.keyword_other
            fields["territorial_scope"] = list(self.settings.statements.territorial_scope)
            self._shared[policy] = fields
        return self._shared[policy]

    def statement(self, decision: Decision, subject: Subject, facts: str) -> dict[str, Any]:
        """One statement, its fields in the order the database documents them."""
        prefix = self.settings.statements.puid_prefix
        action = self.catalog.actions[subject.kind]
        built: dict[str, Any] = {
            "puid": subject.puid or puid_for(prefix, decision.case_id, subject.action_id)
        }
        if action.decision_provision is not None:
            built["decision_provision"] = action.decision_provision
        if action.decision_account is not None:
            built["decision_account"] = action.decision_account
        if self.settings.statements.account_type is not None:
            built["account_type"] = self.settings.statements.account_type
        built.update(self.shared(decision.policy))
        built["content_date"] = _day(subject.content_at or subject.applied_at)
        built["application_date"] = _day(subject.applied_at)
        built["decision_facts"] = facts
        built["source_type"] = self.catalog.source_type(decision.source)
        built["automated_detection"] = "Yes" if detected_automatically(decision.source) else "No"
        built["automated_decision"] = decision_automation(
            confirmed_by=decision.confirmed_by, decided_by=decision.decided_by
        ).value
        return built


# --- gathering ----------------------------------------------------------------------------


def confirmers(session: Session, case_ids: Sequence[int]) -> dict[int, str]:
    """Who confirmed each case (the latest confirmation, should there be several)."""
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.actor)
        .where(CaseEvent.case_id.in_(case_ids), CaseEvent.kind == Op.CONFIRM.value)
        .order_by(CaseEvent.case_id, CaseEvent.seq)
    )
    return {case_id: actor for case_id, actor in rows}


def _requests(session: Session, case_ids: Sequence[int]) -> dict[int, tuple[Any, Any]]:
    rows = session.execute(
        select(ChangeRequest.case_id, ChangeRequest.notified_at, ChangeRequest.due_at)
        .where(ChangeRequest.case_id.in_(case_ids))
        .order_by(ChangeRequest.case_id, ChangeRequest.id)
    )
    return {case_id: (notified, due) for case_id, notified, due in rows}


def _counts(session: Session, table: Any, case_ids: Sequence[int]) -> dict[int, int]:
    rows = session.execute(
        select(table.c.case_id, func.count())
        .where(table.c.case_id.in_(case_ids))
        .group_by(table.c.case_id)
    )
    return {case_id: int(count) for case_id, count in rows}


def _subjects(session: Session, enforcement_ids: Sequence[int]) -> dict[int, list[Subject]]:
    """The applied actions of each decision, one subject per target (first action first)."""
    rows = session.execute(
        select(
            PlatformAction.enforcement_id,
            PlatformAction.id,
            PlatformAction.kind,
            PlatformAction.target_type,
            PlatformAction.target_id,
            PlatformAction.applied_at,
            func.coalesce(App.created_at, Developer.created_at).label("registered_at"),
            StatementSubmission.puid,
            StatementSubmission.status,
        )
        .outerjoin(
            App,
            (PlatformAction.target_type == TargetType.APP) & (App.id == PlatformAction.target_id),
        )
        .outerjoin(
            Developer,
            (PlatformAction.target_type == TargetType.ACCOUNT)
            & (Developer.id == PlatformAction.target_id),
        )
        .outerjoin(StatementSubmission, StatementSubmission.action_id == PlatformAction.id)
        .where(
            PlatformAction.enforcement_id.in_(enforcement_ids),
            PlatformAction.applied_at.is_not(None),
        )
        .order_by(PlatformAction.enforcement_id, PlatformAction.id)
    )
    found: dict[int, dict[tuple[str, str], Subject]] = {}
    for row in rows:
        targets = found.setdefault(row.enforcement_id, {})
        first = targets.get((row.target_type, row.target_id))
        if first is None:
            assert row.applied_at is not None  # selected so
            targets[(row.target_type, row.target_id)] = Subject(
                row.id,
                row.kind,
                row.target_type,
                row.applied_at,
                row.registered_at,
                row.puid,
                row.status,
            )
        elif SEVERITY[row.kind] > SEVERITY[first.kind]:
            targets[(row.target_type, row.target_id)] = replace(first, kind=row.kind)
    return {enforcement_id: list(targets.values()) for enforcement_id, targets in found.items()}


def _decisions(session: Session, enforcement_ids: Sequence[int]) -> list[Decision]:
    rows = session.execute(
        select(
            Enforcement.id,
            Enforcement.case_id,
            Enforcement.urgent,
            Enforcement.approved_by,
            Enforcement.executed_at,
            Enforcement.reversed_at,
            Case.policy,
            Case.source,
            Case.evidence,
        )
        .join(Case, Case.id == Enforcement.case_id)
        .where(Enforcement.id.in_(enforcement_ids))
        .order_by(Enforcement.case_id)
    ).all()
    case_ids = [row.case_id for row in rows]
    confirmed = confirmers(session, case_ids)
    requests = _requests(session, case_ids)
    apps = _counts(session, case_apps, case_ids)
    accounts = _counts(session, case_developers, case_ids)
    return [
        Decision(
            enforcement_id=row.id,
            case_id=row.case_id,
            policy=row.policy,
            source=row.source,
            evidence=numeric_evidence(row.evidence),
            urgent=row.urgent,
            confirmed_by=confirmed.get(row.case_id),
            decided_by=row.approved_by or SYSTEM,
            decided_at=row.executed_at,
            notified_at=requests.get(row.case_id, (None, None))[0],
            due_at=requests.get(row.case_id, (None, None))[1],
            apps=apps.get(row.case_id, 0),
            accounts=accounts.get(row.case_id, 0),
            reversed_at=row.reversed_at,
        )
        for row in rows
    ]


def gather(
    session: Session,
    *,
    since: datetime | None = None,
    unsubmitted: bool = False,
    chunk: int = CHUNK,
) -> Iterator[tuple[Decision, list[Subject]]]:
    """Every executed decision (since ``since``; with ``unsubmitted``, only those with a
    statement not yet submitted) with its subjects, in case order."""
    query = select(Enforcement.id).where(Enforcement.executed_at.is_not(None))
    if since is not None:
        query = query.where(Enforcement.executed_at >= since)
    if unsubmitted:
        open_actions = (
            select(PlatformAction.enforcement_id)
            .outerjoin(StatementSubmission, StatementSubmission.action_id == PlatformAction.id)
            .where(
                PlatformAction.applied_at.is_not(None),
                (StatementSubmission.id.is_(None))
                | (StatementSubmission.status != SubmissionStatus.SUBMITTED),
            )
        )
        query = query.where(Enforcement.id.in_(open_actions))
    ids = list(session.scalars(query.order_by(Enforcement.case_id)))
    for start in range(0, len(ids), chunk):
        batch = ids[start : start + chunk]
        subjects = _subjects(session, batch)
        for decision in _decisions(session, batch):
            if subjects.get(decision.enforcement_id):
                yield decision, subjects[decision.enforcement_id]
