"""submit-statements: send the statements of reasons to the EU's DSA Transparency Database.

Thin over ``cases.statements.submission.submit``, which claims, sends (100 a request),
retries 429/5xx with backoff and records every answer in the database, so a failed or
repeated run never sends a puid twice. The run fails when a statement is refused or not
valid, when the database stayed unavailable (the statements wait for the next run), or at
once when the endpoint is not configured or the token is refused.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from cases.core.db import get_engine
from cases.core.settings import get_settings
from cases.statements import submission
from flows._tasks import instant, outcome, resolve_now, run_name


@task(name="submit-pending-statements", cache_policy=NO_CACHE)
def submit_pending(now: str, limit: int | None) -> dict[str, Any]:
    """Send every statement not yet submitted, and record each answer."""
    report = submission.submit(get_engine(), settings=get_settings(), now=instant(now), limit=limit)
    logger = get_run_logger()
    logger.info(
        "submitted %s, already there %s, rejected %s, invalid %s, pending %s (%s requests)",
        report.submitted,
        report.already,
        len(report.rejected),
        len(report.invalid),
        report.pending,
        report.requests,
    )
    for problem in [*report.rejected, *report.invalid][:50]:
        logger.warning("%s", problem)
    data = report.as_dict()
    data["problems"] = [f"refused: {p}" for p in report.rejected]
    data["problems"] += [f"not valid: {p}" for p in report.invalid]
    return data


@flow(
    name="submit-statements",
    flow_run_name=run_name("submit-statements"),
    description="Send the statements of reasons not yet submitted to the EU's DSA "
    "Transparency Database, 100 a request; each puid once.",
)
def submit_statements(now: str | None = None, limit: int | None = None) -> State:
    """Submit what is due at ``now`` (default: the current time)."""
    report = submit_pending(resolve_now(now), limit)
    stopped = [f"stopped: {report['stopped']}"] if report["stopped"] else []
    return outcome(
        [*stopped, *report["problems"]],
        f"{report['submitted']} statement(s) submitted, {report['already']} already there",
    )
