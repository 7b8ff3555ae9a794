"""What several flows share: the clock, run labels, and the unit of work of a task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed

from cases.core.clock import parse_instant, utcnow
from cases.core.db import unit_of_work
from cases.core.errors import ConfigError
from cases.core.settings import get_settings
from cases.lifecycle import service


def resolve_now(now: str | None) -> str:
    """The instant a run works at, ISO 8601: ``now`` (simulated clock, simulation mode only)
    or the current time."""
    settings = get_settings()
    if now:
        if not settings.simulation:
            raise ConfigError(
                "the now parameter sets a simulated time and is accepted only in simulation "
                "mode (CASEWARD_SIMULATION=true)"
            )
        return parse_instant(now).isoformat()
    return (settings.now or utcnow()).isoformat()


def run_name(flow_name: str) -> Callable[[], str]:
    """A flow-run namer: the flow's name and the simulated instant, when one is given."""

    def name() -> str:
        from prefect.runtime import flow_run

        now = flow_run.parameters.get("now")
        return f"{flow_name}-{now}" if now else f"{flow_name}-{utcnow():%Y%m%d-%H%M%S}"

    return name


def outcome(problems: Sequence[str], message: str) -> State:
    """The final state of a batch run: Failed listing the problems, else Completed."""
    if problems:
        listed = "; ".join(problems[:10])
        return Failed(message=f"{len(problems)} problem(s) ({message}): {listed}")
    return Completed(message=message)


def instant(now: str) -> datetime:
    return parse_instant(now)


def case_tags(case_id: int, policy: str, status: str) -> list[str]:
    """Tags a run about one case carries: filterable in the UI, found by ``hitl``."""
    return [f"case:{case_id}", f"policy:{policy}", f"status:{status}"]


@task(name="label-run", task_run_name="label-run-case-{case_id}", cache_policy=NO_CACHE)
def label_run(case_id: int, kind: str) -> list[str]:
    """Tag the current flow run with the case's id, policy and status."""
    with unit_of_work() as session:
        case = service.get_or_raise(session, case_id=case_id)
        tags = [kind, *case_tags(case.id, case.policy, case.status.value)]
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            merged = sorted({*context.flow_run.tags, *tags})
            client.update_flow_run(context.flow_run.id, tags=merged)
    get_run_logger().info("case %s: %s", case_id, ", ".join(tags))
    return tags
