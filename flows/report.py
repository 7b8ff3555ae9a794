"""report: the daily summary as table and markdown artifacts.

Open cases by policy and status, deadlines in the coming week, enforcement and appeal
outcomes, and the appeal overturn rate.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy import func, select

from cases.models import Appeal, Case, PlatformAction
from cases.states import TERMINAL
from flows._tasks import instant, resolve_now, run_name, unit_of_work


@task(name="gather-report", cache_policy=NO_CACHE)
def gather(now: str) -> dict[str, Any]:
    """Every figure of the report, read in one transaction."""
    at = instant(now)
    with unit_of_work() as session:
        open_cases = session.execute(
            select(Case.policy, Case.status, func.count())
            .where(Case.status.not_in(TERMINAL))
            .group_by(Case.policy, Case.status)
            .order_by(Case.policy, Case.status)
        ).all()
        due = session.execute(
            select(Case.id, Case.policy, Case.status, Case.deadline)
            .where(Case.deadline >= at, Case.deadline < at + timedelta(days=7))
            .order_by(Case.deadline)
            .limit(200)
        ).all()
        actions = session.execute(
            select(PlatformAction.kind, PlatformAction.status, func.count()).group_by(
                PlatformAction.kind, PlatformAction.status
            )
        ).all()
        appeals = Counter(
            dict(session.execute(select(Appeal.status, func.count()).group_by(Appeal.status)).all())
        )
    decided = appeals["upheld"] + appeals["overturned"]
    return {
        "open": [{"policy": p, "status": s.value, "cases": n} for p, s, n in open_cases],
        "deadlines": [
            {"case": i, "policy": p, "status": s.value, "deadline": d.isoformat()}
            for i, p, s, d in due
        ],
        "actions": [{"action": k.value, "status": s.value, "count": n} for k, s, n in actions],
        "appeals": {str(k): v for k, v in appeals.items()},
        "overturn_rate": appeals["overturned"] / decided if decided else None,
    }


@task(name="publish-report", cache_policy=NO_CACHE)
def publish(report: dict[str, Any], now: str) -> None:
    """The report's tables and its markdown summary."""
    create_table_artifact(report["open"], key="report-open-cases", description=f"at {now}")
    create_table_artifact(report["deadlines"], key="report-deadlines-this-week")
    create_table_artifact(report["actions"], key="report-enforcement-actions")
    rate = report["overturn_rate"]
    appeals = ", ".join(f"{k}: {v}" for k, v in sorted(report["appeals"].items())) or "none"
    open_total = sum(r["cases"] for r in report["open"])
    create_markdown_artifact(
        key="daily-report",
        markdown=f"# Caseward daily report, {now[:10]}\n\n"
        f"- open cases: **{open_total}**\n"
        f"- deadlines in the next 7 days: **{len(report['deadlines'])}**\n"
        f"- enforcement actions: "
        + (
            ", ".join(f"{a['action']} {a['status']}: {a['count']}" for a in report["actions"])
            or "none"
        )
        + f"\n- appeals: {appeals}\n"
        f"- appeal overturn rate: **{'-' if rate is None else f'{rate:.0%}'}**\n",
    )


@flow(
    name="report",
    flow_run_name=run_name("report"),
    description="Daily summary: open cases, deadlines this week, enforcement and appeal outcomes.",
)
def report(now: str | None = None) -> dict[str, Any]:
    """Publish the report as of ``now`` (default: the current time)."""
    at = resolve_now(now)
    figures = gather(at)
    publish(figures, at)
    return figures
