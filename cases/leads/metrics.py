"""The figures of the leads' work for the daily report: how fast cases are triaged and
appeals decided (p50, p90), SLA breaches, the overturn rate per policy, strikes issued.

Durations and counts cover the last :data:`WINDOW_DAYS` days before the report; triage
taken by a rule is counted apart, so that the percentiles measure the leads.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.enums import AppealStatus
from cases.core.identity import RULE_PREFIX
from cases.core.models import Appeal, Case, CaseEvent, Enforcement, SlaBreach, case_developers
from cases.enforcement import strikes
from cases.leads.queue import overdue, work_queue
from cases.lifecycle.states import Op

WINDOW_DAYS = 30
TRIAGE_OPS = (Op.CONFIRM.value, Op.DISMISS.value)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _spread(hours: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(hours),
        "p50_hours": percentile(hours, 0.5),
        "p90_hours": percentile(hours, 0.9),
    }


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def time_to_triage(session: Session, *, since: datetime, now: datetime) -> dict[str, Any]:
    """From opening to the first confirmation or dismissal, for cases triaged in the
    window: the leads' spread, and how many a rule triaged."""
    first = (
        select(CaseEvent.case_id, func.min(CaseEvent.id).label("event_id"))
        .where(CaseEvent.kind.in_(TRIAGE_OPS))
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    rows = session.execute(
        select(Case.created_at, CaseEvent.at, CaseEvent.actor)
        .join(first, first.c.case_id == Case.id)
        .join(CaseEvent, CaseEvent.id == first.c.event_id)
        .where(CaseEvent.at >= since, CaseEvent.at <= now)
    ).all()
    leads = [_hours(at - opened) for opened, at, actor in rows if not actor.startswith(RULE_PREFIX)]
    return _spread(leads) | {"by_rules": len(rows) - len(leads)}


def time_to_appeal_decision(session: Session, *, since: datetime, now: datetime) -> dict[str, Any]:
    """From an appeal to its decision, for appeals decided in the window."""
    rows = session.execute(
        select(Appeal.submitted_at, Appeal.decided_at).where(
            Appeal.decided_at >= since, Appeal.decided_at <= now
        )
    ).all()
    return _spread([_hours(decided - submitted) for submitted, decided in rows if decided])


def overturn_rate_by_policy(session: Session) -> list[dict[str, Any]]:
    """Per policy: appeals decided, overturned, and the overturned share."""
    rows = session.execute(
        select(Case.policy, Appeal.status, func.count())
        .join(Case, Case.id == Appeal.case_id)
        .where(Appeal.status != AppealStatus.PENDING)
        .group_by(Case.policy, Appeal.status)
    ).all()
    decided: Counter[str] = Counter()
    overturned: Counter[str] = Counter()
    for policy, status, count in rows:
        decided[policy] += count
        if status == AppealStatus.OVERTURNED:
            overturned[policy] += count
    return [
        {
            "policy": policy,
            "decided": decided[policy],
            "overturned": overturned[policy],
            "rate": overturned[policy] / decided[policy],
        }
        for policy in sorted(decided)
    ]


def strikes_issued(session: Session, *, since: datetime, now: datetime) -> dict[str, int]:
    """Strikes issued in the window (one per developer of each enforcement applied), the
    developers they went to, and the developers with more than one strike now."""
    rows = session.execute(
        select(case_developers.c.developer_id)
        .join(Enforcement, Enforcement.case_id == case_developers.c.case_id)
        .where(Enforcement.executed_at >= since, Enforcement.executed_at <= now)
    ).all()
    developers = {d for (d,) in rows}
    current = strikes.current(session, sorted(developers), now=now) if developers else {}
    return {
        "strikes": len(rows),
        "developers": len(developers),
        "repeat_offenders": sum(1 for n in current.values() if n > 1),
    }


def sla_breaches(session: Session, *, since: datetime, now: datetime) -> dict[str, Any]:
    """Breaches recorded in the window, and items overdue now, by kind."""
    recorded = session.execute(
        select(SlaBreach.kind, func.count())
        .where(SlaBreach.detected_at >= since, SlaBreach.detected_at <= now)
        .group_by(SlaBreach.kind)
    ).all()
    late = Counter(i.kind for i in overdue(work_queue(session, now=now)))
    return {
        "recorded": {kind: count for kind, count in sorted(recorded)},
        "overdue_now": dict(sorted(late.items())),
    }


def lead_figures(session: Session, *, now: datetime) -> dict[str, Any]:
    """Every figure of the leads' work for the report at ``now``."""
    since = now - timedelta(days=WINDOW_DAYS)
    return {
        "window_days": WINDOW_DAYS,
        "time_to_triage": time_to_triage(session, since=since, now=now),
        "time_to_appeal_decision": time_to_appeal_decision(session, since=since, now=now),
        "sla_breaches": sla_breaches(session, since=since, now=now),
        "overturn_by_policy": overturn_rate_by_policy(session),
        "strikes_issued": strikes_issued(session, since=since, now=now),
    }
