"""report: the daily summary as table and markdown artifacts.

Open cases by policy and status, deadlines in the coming week, enforcement and appeal
outcomes, the appeal overturn rate, the decisions waiting for a lead, and the figures of
the leads' work (``cases.leads.metrics``): time to triage and to an appeal decision (p50,
p90), SLA breaches, the overturn rate per policy and the strikes issued.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from cases.core.clock import parse_instant
from cases.core.db import unit_of_work
from cases.leads import metrics
from cases.lifecycle import queries
from flows import _markdown
from flows._tasks import instant, resolve_now, run_name


@task(name="gather-report", cache_policy=NO_CACHE)
def gather(now: str) -> dict[str, Any]:
    """Every figure of the report, read in one transaction."""
    with unit_of_work() as session:
        figures = queries.daily_report(session, now=instant(now))
        return figures | {"leads": metrics.lead_figures(session, now=instant(now))}


@task(name="publish-report", cache_policy=NO_CACHE)
def publish(report: dict[str, Any], now: str) -> None:
    """The report's tables and its markdown summary."""
    create_table_artifact(report["open"], key="report-open-cases", description=f"at {now}")
    create_table_artifact(report["deadlines"], key="report-deadlines-this-week")
    create_table_artifact(report["actions"], key="report-enforcement-actions")
    create_table_artifact(report["waiting"], key="report-waiting-decisions")
    create_table_artifact(report["leads"]["overturn_by_policy"], key="report-overturn-by-policy")
    rate = report["overturn_rate"]
    create_markdown_artifact(
        key="daily-report",
        markdown=_markdown.render(
            "daily_report",
            date=now[:10],
            open_total=sum(r["cases"] for r in report["open"]),
            deadlines=len(report["deadlines"]),
            actions=report["actions"],
            appeals=sorted(report["appeals"].items()),
            overturn_rate="-" if rate is None else f"{rate:.0%}",
            waiting=[w | {"since": parse_instant(w["since"])} for w in report["waiting"]],
            leads=report["leads"],
        ),
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
