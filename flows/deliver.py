"""deliver-email: send the outbox through the configured provider, every minute.

``cases.email.delivery.deliver_pending`` claims due messages, sends them and records each outcome;
a transient provider error puts the message back with backoff (in the database, so the next
run retries it), a permanent one blocks its case. An outage (401/403, a rejected sender, a
missing key, a provider that cannot be reached) fails the run at once and changes no e-mail.
This task itself is retried only when the error that stopped it is transient (a busy
database).
"""

from __future__ import annotations

from typing import Any

from prefect import Task, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from sqlalchemy.exc import OperationalError

from cases.core.db import get_engine
from cases.email import delivery
from cases.email.senders.base import TransientDeliveryError
from flows._relay import relay_case_events
from flows._tasks import instant, outcome, resolve_now, run_name


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry on a transient provider error or a busy/unreachable database, nothing else."""
    try:
        state.result()
    except (TransientDeliveryError, OperationalError):
        return True
    except Exception:
        return False
    return False


@task(
    name="deliver-outbox",
    retries=3,
    retry_delay_seconds=[5, 30, 120],
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def deliver_outbox(now: str, limit: int | None) -> dict[str, Any]:
    """Claim, send and record every message due at ``now``."""
    report = delivery.deliver_pending(get_engine(), now=instant(now), limit=limit)
    logger = get_run_logger()
    logger.info(
        "claimed %s: sent %s, retrying %s, failed %s, uncertain %s",
        report.claimed,
        report.sent,
        report.retried,
        report.failed,
        report.uncertain,
    )
    for error in report.errors[:50]:
        logger.warning("%s", error)
    return report.as_dict()


@flow(
    name="deliver-email",
    flow_run_name=run_name("deliver-email"),
    description="Send the developer e-mail waiting in the outbox; deadlines start on delivery.",
)
def deliver_email(now: str | None = None, limit: int | None = None) -> State:
    """Deliver what is due at ``now`` (default: the current time), then relay the events."""
    report = deliver_outbox(resolve_now(now), limit)
    relay_case_events()
    stopped = [f"delivery stopped: {report['stopped']}"] if report["stopped"] else []
    return outcome(stopped, f"{report['sent']} e-mail(s) sent, {report['failed']} failed")
