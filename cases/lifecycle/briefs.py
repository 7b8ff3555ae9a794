"""What a lead reads before deciding: a case, its evidence, its actions, its appeal, its history.

One read model serves every place a lead decides outside the terminal: the ``case-<id>``
artifact, the description above a decision form in the Prefect UI, and the daily report's
list of waiting decisions. Plain data only; the wording is in ``templates/prefect/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from cases.core.clock import parse_instant, readable
from cases.core.enums import CaseStatus
from cases.core.models import App, Appeal, Case, CaseEvent, ChangeRequest, Enforcement
from cases.core.settings import get_settings
from cases.enforcement import planning
from cases.enforcement.catalog import get_catalog
from cases.lifecycle import extensions, service
from cases.lifecycle.states import ACTIVE_BEFORE_ENFORCEMENT

# shown elsewhere in the brief (the summary line, the apps table) or for tuning only
EVIDENCE_SKIPPED = frozenset({"summary", "thresholds", "apps"})
SHOWN_ITEMS = 3
ISO_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


class Highlight(BaseModel):
    """One line of evidence: a label and a short value."""

    label: str
    value: str


class AppLine(BaseModel):
    id: str
    name: str
    developer_id: str
    website: str
    status: str
    requests_7d: int


class ActionLine(BaseModel):
    kind: str
    target_type: str
    target_id: str
    status: str


class TimelineLine(BaseModel):
    at: datetime
    kind: str
    from_status: str | None
    to_status: str
    actor: str
    reason: str


class CaseBrief(BaseModel):
    """Everything on one case a lead needs to decide, without the raw evidence JSON."""

    id: int
    policy: str
    policy_title: str
    severity: str
    status: str
    score: float | None
    reason: str
    outcome: str | None
    assignee: str | None
    opened_at: datetime
    deadline: datetime | None
    summary: str
    highlights: list[Highlight]
    apps: list[AppLine]
    developer_ids: list[str]
    changes: list[str]
    changes_due: datetime | None
    enforcement_reason: str | None
    approved_by: str | None
    requires_approval: bool
    actions: list[ActionLine]
    impact_apps: int
    impact_accounts: int
    impact_requests_7d: int
    appeal_statement: str | None
    appeal_by: str | None
    appeal_at: datetime | None
    timeline: list[TimelineLine]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(_scalar(v) for v in value if not isinstance(v, Mapping | list | tuple))
    text = " ".join(str(value).split())
    return readable(parse_instant(text)) if ISO_INSTANT.match(text) else text


def _record(value: Mapping[str, Any]) -> str:
    """A record's plain fields (and lists of plain values) as ``key: value`` pairs."""
    pairs = [(k, _scalar(v)) for k, v in value.items() if not isinstance(v, Mapping)]
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in pairs if v)


def _short(value: Any) -> str:
    """A value as a person reads it in one table cell: a list by its first items and its size."""
    if isinstance(value, Mapping):
        return _record(value)
    if isinstance(value, list | tuple):
        items = [_record(v) if isinstance(v, Mapping) else _scalar(v) for v in value]
        more = len(items) - SHOWN_ITEMS
        return "; ".join(items[:SHOWN_ITEMS]) + (f"; and {more} more" if more > 0 else "")
    return _scalar(value)


def highlights(evidence: Mapping[str, Any]) -> list[Highlight]:
    """Evidence fields as label and short value, the summary and thresholds left out."""
    return [
        Highlight(label=key.replace("_", " ").capitalize(), value=_short(value))
        for key, value in evidence.items()
        if key not in EVIDENCE_SKIPPED and value not in (None, "", [], {})
    ]


def _impact(session: Session, case: Case) -> tuple[int, int, int]:
    """Apps and accounts a pending enforcement would cut off, and their last week's requests."""
    if case.status not in {CaseStatus.ENFORCEMENT_DUE, *ACTIVE_BEFORE_ENFORCEMENT}:
        return 0, 0, 0
    preview = planning.preview_impact(session, case=case)
    return len(preview.app_ids), len(preview.account_ids), preview.requests_7d


def case_briefs(session: Session, *, case_ids: Sequence[int]) -> list[CaseBrief]:
    """The briefs of ``case_ids`` (missing ids skipped), in id order, a few queries in all."""
    cases = service.get_many(session, case_ids=case_ids)
    ids = [c.id for c in cases]
    timelines: dict[int, list[CaseEvent]] = {i: [] for i in ids}
    for event in session.scalars(
        select(CaseEvent).where(CaseEvent.case_id.in_(ids)).order_by(CaseEvent.id)
    ):
        timelines[event.case_id].append(event)
    requests = {
        r.case_id: r
        for r in session.scalars(
            select(ChangeRequest).where(ChangeRequest.case_id.in_(ids)).order_by(ChangeRequest.id)
        )
    }
    decisions = {d.case_id: d for d in planning.get_for_cases(session, case_ids=ids)}
    appeals = {a.case_id: a for a in session.scalars(select(Appeal).where(Appeal.case_id.in_(ids)))}
    titles = {str(p): e.title for p, e in get_catalog().policies.items()}
    return [
        _brief(
            session,
            case,
            timelines[case.id],
            requests.get(case.id),
            decisions.get(case.id),
            appeals.get(case.id),
            titles,
        )
        for case in cases
    ]


def case_brief(session: Session, *, case_id: int) -> CaseBrief:
    """The brief of one case (``NotFound`` when there is none)."""
    service.get_or_raise(session, case_id=case_id)
    return case_briefs(session, case_ids=[case_id])[0]


def _brief(
    session: Session,
    case: Case,
    events: list[CaseEvent],
    request: ChangeRequest | None,
    decision: Enforcement | None,
    appeal: Appeal | None,
    titles: Mapping[str, str],
) -> CaseBrief:
    evidence = case.evidence or {}
    apps_cut, accounts_cut, requests_7d = _impact(session, case)
    return CaseBrief(
        id=case.id,
        policy=case.policy,
        policy_title=titles.get(case.policy, case.policy),
        severity=case.severity.value,
        status=case.status.value,
        score=case.score,
        reason=case.reason,
        outcome=case.outcome,
        assignee=case.assignee,
        opened_at=case.created_at,
        deadline=case.deadline,
        summary=str(evidence.get("summary") or case.reason),
        highlights=highlights(evidence),
        apps=[_app_line(a) for a in case.apps],
        developer_ids=[d.id for d in case.developers],
        changes=list(request.changes) if request else [],
        changes_due=request.due_at if request else None,
        enforcement_reason=decision.reason if decision else None,
        approved_by=decision.approved_by if decision else None,
        requires_approval=bool(decision and decision.requires_approval),
        actions=[
            ActionLine(
                kind=a.kind.value,
                target_type=a.target_type,
                target_id=a.target_id,
                status=a.status.value,
            )
            for a in (decision.actions if decision else [])
        ],
        impact_apps=apps_cut,
        impact_accounts=accounts_cut,
        impact_requests_7d=requests_7d,
        appeal_statement=appeal.statement if appeal else None,
        appeal_by=appeal.submitted_by if appeal else None,
        appeal_at=appeal.submitted_at if appeal else None,
        timeline=[
            TimelineLine(
                at=e.at,
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                actor=e.actor,
                reason=e.reason,
            )
            for e in events
        ],
    )


def _app_line(app: App) -> AppLine:
    return AppLine(
        id=app.id,
        name=app.name,
        developer_id=app.developer_id,
        website=app.website or "",
        status=app.status.value,
        requests_7d=app.requests_7d,
    )


def eligible_reviewers(brief: CaseBrief) -> list[str] | None:
    """The leads who may decide this case's pending decision; None when anyone may (no
    leads configured, in simulation), [] when nobody may.

    The same rules the lifecycle guards apply (lead only; an appeal not decided by the lead
    who approved the enforcement), so the form refuses what the guard would refuse.
    """
    settings = get_settings()
    leads = list(settings.leads)
    if not leads:
        return None if settings.simulation else []
    if brief.status == CaseStatus.APPEALED.value and brief.approved_by:
        return [lead for lead in leads if lead != brief.approved_by]
    return leads


class WaitingDecision(BaseModel):
    """A case waiting for a lead: an enforcement to approve, an appeal to decide or a
    developer's request for more time to answer."""

    case_id: int
    policy: str
    kind: str
    since: datetime


def waiting_decisions(session: Session, *, limit: int = 200) -> list[WaitingDecision]:
    """Every decision waiting for a lead, oldest first."""
    approvals = session.execute(
        select(Case.id, Case.policy, Case.status_changed_at)
        .join(Enforcement, Enforcement.case_id == Case.id)
        .where(
            and_(
                Case.status == CaseStatus.ENFORCEMENT_DUE,
                Enforcement.requires_approval.is_(True),
                Enforcement.approved_by.is_(None),
            )
        )
    ).all()
    appeals = session.execute(
        select(Case.id, Case.policy, Case.status_changed_at).where(
            Case.status == CaseStatus.APPEALED
        )
    ).all()
    extension_requests = session.execute(
        select(Case.id, Case.policy, extensions.requested_at_clause()).where(
            extensions.awaiting_clause()
        )
    ).all()
    kinds = (
        ("approve-enforcement", approvals),
        ("review-appeal", appeals),
        ("extension-request", extension_requests),
    )
    rows = [
        WaitingDecision(case_id=i, policy=p, kind=kind, since=at)
        for kind, found in kinds
        for i, p, at in found
    ]
    return sorted(rows, key=lambda r: (r.since, r.case_id))[:limit]
