"""advance-cases: the sweeper on a schedule; every step that is due, in batches.

Each sweeper step (outreach, feature-change requests, reminders, deadline expiry,
enforcement, appeal windows) is one task run over every due case, one transaction per batch
(``cases.lifecycle.sweeper.run_step``). A case that fails is reported and the batch goes on; the run
ends Failed, naming the cases, once everything else is done. Then ``check-slas`` records the
leads' work-queue items past their SLA target and announces each breach once
(``caseward.sla.breached``, flows/_sla.py).

The sweep publishes nothing itself: the Prefect events and ``case-<id>`` artifacts of the
changes it makes are published by the event relay of the next ``deliver-email`` run (every
minute). Publishing is the costly part of a large sweep (the Prefect server ingests one
event per change), and it must not hold up the lifecycle.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from cases.core.db import get_engine
from cases.lifecycle import sweeper
from flows._sla import check_slas
from flows._tasks import instant, outcome, resolve_now, run_name
from flows.hitl import expire_waiting


@task(task_run_name="{step}", cache_policy=NO_CACHE)
def run_step(step: str, now: str, batch_size: int) -> dict[str, Any]:
    """Perform one sweeper step for every case due at ``now``."""
    logger = get_run_logger()

    def progress(report: sweeper.StepReport) -> None:
        logger.info("%s: %s done, %s failed so far", step, len(report.done), len(report.failed))

    report = sweeper.run_step(
        get_engine(), step, now=instant(now), batch_size=batch_size, on_batch=progress
    )
    for case_id, error in report.failed.items():
        logger.error("case %s: %s failed: %s", case_id, step, error)
    # a count, not the ids: Prefect walks every task result and parameter it is handed
    return {"step": step, "done": len(report.done), "failed": report.failed}


@task(name="publish-advance-summary", cache_policy=NO_CACHE)
def publish_summary(reports: list[dict[str, Any]], now: str) -> dict[str, Any]:
    """A table of what each step did, and the failed cases with why."""
    rows = [
        {
            "step": r["step"],
            "done": r["done"],
            "failed": len(r["failed"]),
            "failed cases": ", ".join(str(c) for c in list(r["failed"])[:20]),
        }
        for r in reports
    ]
    create_table_artifact(rows, key="advance-cases", description=f"advance-cases at {now}")
    failed = {c: e for r in reports for c, e in r["failed"].items()}
    return {"done": sum(r["done"] for r in reports), "failed": failed}


@flow(
    name="advance-cases",
    flow_run_name=run_name("advance-cases"),
    description="Perform every due lifecycle step: outreach, change requests, reminders, "
    "deadline expiry, enforcement and appeal windows.",
    log_prints=True,
)
def advance_cases(now: str | None = None, batch_size: int = 500) -> State:
    """Sweep every step due at ``now`` (default: the current time)."""
    at = resolve_now(now)
    reports = [run_step(step, at, batch_size) for step in sweeper.STEP_NAMES]
    expire_waiting()
    check_slas(at)
    summary = publish_summary(reports, at)
    failures = [f"case {c}: {e}" for c, e in summary["failed"].items()]
    return outcome(failures, f"{summary['done']} case step(s) performed")
