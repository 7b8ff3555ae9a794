"""SLA breaches as Prefect events: ``caseward.sla.breached``, the case as its resource.

The advance-cases run records every work-queue item past its target
(``cases.leads.sla.record_breaches``, once per breach) and announces the breaches not
announced yet, each as one event whose id derives from the breach's row, so an
announcement repeated after a crash is the same event and Prefect stores it once.
Automations react to it (page the on-call lead, post to a channel).
"""

from __future__ import annotations

import uuid

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from cases.core.db import unit_of_work
from cases.core.settings import get_settings
from cases.leads import sla
from cases.leads.queue import target
from flows._relay import NAMESPACE, case_resource
from flows._tasks import instant

EVENT = "caseward.sla.breached"


def breach_uuid(breach_id: int) -> uuid.UUID:
    """The Prefect event id of breach ``breach_id`` (stable: a repeat dedupes)."""
    return uuid.uuid5(NAMESPACE, f"sla-breach-{breach_id}")


def announce(now: str) -> int:
    """Emit one event per breach not announced yet, then mark them announced."""
    with unit_of_work() as session:
        breaches = sla.unannounced(session)
    settings = get_settings().sla
    for b in breaches:
        emit_event(
            event=EVENT,
            resource=case_resource(b.case_id, b.policy, b.status) | {"caseward.sla.kind": b.kind},
            payload={
                "kind": b.kind,
                "waiting_since": b.since.isoformat(),
                "due_at": b.due_at.isoformat(),
                "target_hours": target(b.kind, settings).total_seconds() / 3600,
                "detected_at": b.detected_at.isoformat(),
            },
            id=breach_uuid(b.id),
        )
    if breaches:
        with unit_of_work() as session:
            sla.mark_announced(session, [b.id for b in breaches], now=instant(now))
    return len(breaches)


@task(name="check-slas", cache_policy=NO_CACHE)
def check_slas(now: str) -> dict[str, int]:
    """Record the work-queue items past their SLA target and announce each breach once."""
    with unit_of_work() as session:
        recorded = sla.record_breaches(session, now=instant(now))
    announced = announce(now)
    get_run_logger().info("SLA breaches: %s new, %s announced", recorded, announced)
    return {"recorded": recorded, "announced": announced}
