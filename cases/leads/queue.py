"""The leads' work queue: everything that waits for a lead, with its age and its SLA target.

The items are new cases to triage, the decisions a case waits for a lead to take (read from
:func:`cases.lifecycle.briefs.waiting_decisions`, the one list of them: enforcements to
approve, appeals to decide, and any kind added there, such as a developer's extension
request), compliance reports to verify, and notices that could not be delivered. Each kind
has a target (``sla.*_days``); an item waiting longer is overdue. Overdue items come first,
the most overdue first, then the others by how soon they fall due.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus
from cases.core.models import Case, CaseEvent
from cases.core.settings import SlaSettings, get_settings
from cases.lifecycle import briefs, service
from cases.lifecycle.states import TERMINAL, Op

TRIAGE = "triage"
CHECK_COMPLIANCE = "check-compliance"
UNBLOCK_DELIVERY = "unblock-delivery"

# each kind's target in the sla settings; a kind without one waits at most other_days
SLA_SETTING = {
    TRIAGE: "triage_days",
    "approve-enforcement": "approval_days",
    "review-appeal": "appeal_days",
    "extension-request": "extension_request_days",
    CHECK_COMPLIANCE: "compliance_days",
    UNBLOCK_DELIVERY: "delivery_days",
}


def target(kind: str, sla: SlaSettings) -> timedelta:
    """How long an item of ``kind`` may wait for a lead."""
    return timedelta(days=getattr(sla, SLA_SETTING.get(kind, "other_days")))


class QueueItem(BaseModel):
    """One thing a lead must do, with when it started waiting and when it is due."""

    case_id: int
    kind: str
    policy: str
    severity: str
    assignee: str | None
    since: datetime
    due_at: datetime
    overdue: bool


def _waiting(session: Session) -> list[tuple[int, str, datetime]]:
    """(case, kind, since) of every item, before the cases' details are read."""
    found = [
        (w.case_id, w.kind, w.since) for w in briefs.waiting_decisions(session, limit=10_000_000)
    ]
    statuses = ((TRIAGE, CaseStatus.OPENED), (CHECK_COMPLIANCE, CaseStatus.COMPLIANCE_REPORTED))
    for kind, status in statuses:
        rows = session.execute(select(Case.id, Case.status_changed_at).where(Case.status == status))
        found += [(case_id, kind, since) for case_id, since in rows]
    blocked = session.execute(
        select(Case.id, func.max(CaseEvent.at))
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .where(
            Case.delivery_blocked.is_(True),
            Case.status.not_in(TERMINAL),
            CaseEvent.kind == Op.DELIVERY_FAILED.value,
        )
        .group_by(Case.id)
    )
    found += [(case_id, UNBLOCK_DELIVERY, since) for case_id, since in blocked]
    return found


def work_queue(session: Session, *, now: datetime, assignee: str | None = None) -> list[QueueItem]:
    """Every item waiting for a lead at ``now`` (only ``assignee``'s cases when given),
    overdue first."""
    sla = get_settings().sla
    waiting = _waiting(session)
    details: dict[int, tuple[str, str, str | None]] = {}
    ids = sorted({case_id for case_id, _, _ in waiting})
    for start in range(0, len(ids), service.ID_CHUNK):
        rows = session.execute(
            select(Case.id, Case.policy, Case.severity, Case.assignee).where(
                Case.id.in_(ids[start : start + service.ID_CHUNK])
            )
        )
        details.update((i, (p, str(s), a)) for i, p, s, a in rows)
    items = []
    for case_id, kind, since in waiting:
        policy, severity, owner = details[case_id]
        if assignee is not None and owner != assignee:
            continue
        due = since + target(kind, sla)
        items.append(
            QueueItem(
                case_id=case_id,
                kind=kind,
                policy=policy,
                severity=severity,
                assignee=owner,
                since=since,
                due_at=due,
                overdue=due <= now,
            )
        )
    return sorted(items, key=lambda i: (i.due_at, i.case_id, i.kind))


def overdue(items: Sequence[QueueItem]) -> list[QueueItem]:
    return [i for i in items if i.overdue]
