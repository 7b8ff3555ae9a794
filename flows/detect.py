"""detect: read a platform snapshot, import it, run the detectors, open or refresh cases.

The whole run is one unit of work (``cases.detection.run.run_detection``): a snapshot that
breaks the input contract changes nothing and fails the run with its problems listed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from cases.core.db import unit_of_work
from cases.core.enums import FindingAction
from cases.core.settings import get_settings
from cases.detection.run import run_detection
from cases.lifecycle.write import DETECTOR
from flows._relay import relay_case_events
from flows._tasks import instant, resolve_now, run_name

ACTIONS = [a.value for a in FindingAction]  # what a finding did to its case: opened, ...


@task(task_run_name="detect-{snapshot}", cache_policy=NO_CACHE)
def run_detectors(snapshot: str, now: str, actor: str) -> list[dict[str, Any]]:
    """Validate and import the snapshot, detect, and open or refresh the cases it finds."""
    with unit_of_work() as session:
        report = run_detection(
            session,
            Path(snapshot),
            settings=get_settings().detection,
            actor=actor,
            now=instant(now),
            progress=get_run_logger().info,
        )
    get_run_logger().info("timings: %s", {k: round(v, 2) for k, v in report.timings.items()})
    if report.triaged is not None and report.triaged.enabled:
        get_run_logger().info(
            "triage rules decided %s; %s case(s) wait for a lead; refused: %s",
            report.triaged.counts() or "nothing",
            len(report.triaged.waiting),
            report.triaged.refused or "none",
        )
    return [
        f.model_dump(mode="json", include={"policy", "case_id", "action", "severity", "app_ids"})
        for f in report.findings
    ]


@task(name="publish-detection-summary", cache_policy=NO_CACHE)
def publish_summary(findings: list[dict[str, Any]], snapshot: str, now: str) -> dict[str, int]:
    """Findings per policy and what happened to their cases, as table and markdown."""
    per = Counter((f["policy"], f["action"]) for f in findings)
    policies = sorted({f["policy"] for f in findings})
    rows = [
        {
            "policy": p,
            **{a: per[(p, a)] for a in ACTIONS},
            "apps": sum(len(f["app_ids"]) for f in findings if f["policy"] == p),
        }
        for p in policies
    ]
    create_table_artifact(rows, key="detection-summary", description=f"detect at {now}")
    opened = [str(f["case_id"]) for f in findings if f["action"] == "opened"]
    create_markdown_artifact(
        key="detection-report",
        markdown=f"# Detection on `{snapshot}` at {now}\n\n{len(findings)} finding(s); "
        f"{len(opened)} new case(s): {', '.join(opened[:50]) or 'none'}"
        f"{' …' if len(opened) > 50 else ''}\n",
    )
    return {a: sum(per[(p, a)] for p in policies) for a in ACTIONS}


@flow(
    name="detect",
    flow_run_name=run_name("detect"),
    description="Import a platform snapshot, run the four detectors and open or refresh cases.",
    log_prints=True,
)
def detect(
    snapshot: str = "data/snapshot", now: str | None = None, actor: str = DETECTOR
) -> dict[str, int]:
    """Detect on the snapshot folder ``snapshot`` at ``now`` (default: the current time)."""
    at = resolve_now(now)
    findings = run_detectors(snapshot, at, actor)
    counts = publish_summary(findings, snapshot, at)
    relay_case_events()
    return counts
