"""review-appeal: a lead upholds or overturns an appealed enforcement from the UI.

Started per appeal (by hand, or by the deployment's trigger on
``caseward.case.submit_appeal``). The run waits for an :class:`AppealDecision`; see
:mod:`flows.hitl` for pause/suspend, the CLI path and the timeout.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from cases.core.db import unit_of_work
from cases.core.settings import get_settings
from cases.enforcement import appeals
from cases.enforcement.platform import get_adapter
from flows._relay import relay_case_events
from flows._tasks import instant, label_run, resolve_now
from flows.hitl import AppealDecision, as_state, settled, timed_out, wait_for_decision

KIND = "review-appeal"


@task(task_run_name="awaits-review-case-{case_id}", cache_policy=NO_CACHE)
def awaits_review(case_id: int) -> bool:
    """Whether the case has an appeal nobody has decided yet."""
    with unit_of_work() as session:
        return appeals.awaiting_review(session, case_id=case_id)


@task(task_run_name="settle-appeal-case-{case_id}", cache_policy=NO_CACHE)
def settle(
    case_id: int, decision: dict[str, Any] | None, timeout_hours: float, now: str | None
) -> dict[str, str]:
    """Record the decision, unless already recorded (CLI); escalate when none came."""
    if not awaits_review.fn(case_id):
        return settled("AlreadyDecided", f"case {case_id} has no undecided appeal (now)")
    if decision is None:
        return timed_out(case_id, KIND, timeout_hours)
    with unit_of_work() as session:
        appeals.decide_appeal(
            session,
            case_id=case_id,
            reviewer=decision["reviewer"],
            overturn=decision["decision"] == "overturn",
            reason=decision["reason"],
            adapter=get_adapter(session, get_settings()),
            now=instant(resolve_now(now)),
        )
    said = f"{decision['reviewer']}: {decision['reason']}"
    return settled(decision["decision"].capitalize(), said)


@flow(
    name=KIND,
    flow_run_name="review-appeal-case-{case_id}",
    persist_result=True,
    description="Wait for a lead to uphold or overturn an appeal (a form on the paused run); "
    "escalate when nobody decides in time.",
)
def review_appeal(
    case_id: int, timeout_hours: float = 120.0, poll_seconds: int = 10, now: str | None = None
) -> State:
    """Ask a lead to decide case ``case_id``'s appeal and record the answer."""
    label_run(case_id, KIND)
    decision = (
        wait_for_decision(
            AppealDecision,
            timeout_seconds=max(1, round(timeout_hours * 3600)),
            poll_seconds=poll_seconds,
        )
        if awaits_review(case_id)
        else None
    )
    result = settle(case_id, decision.model_dump() if decision else None, timeout_hours, now)
    relay_case_events(max_artifacts=50)
    return as_state(result)
