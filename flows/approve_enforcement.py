"""approve-enforcement: a lead approves (or declines) a planned enforcement from the UI.

Started per case (by hand, by the CLI, or by the deployment's trigger on
``caseward.case.escalate``). The run waits for an :class:`EnforcementDecision`; see
:mod:`flows.hitl` for pause/suspend, the CLI path and the timeout.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from cases.core.db import unit_of_work
from cases.lifecycle import escalation
from flows._relay import relay_case_events
from flows._tasks import instant, label_run, resolve_now
from flows.hitl import EnforcementDecision, as_state, settled, timed_out, wait_for_decision

KIND = "approve-enforcement"


@task(task_run_name="awaits-approval-case-{case_id}", cache_policy=NO_CACHE)
def awaits_approval(case_id: int) -> bool:
    """Whether the case's planned enforcement still needs a lead's approval."""
    with unit_of_work() as session:
        return escalation.awaiting_approval(session, case_id=case_id)


@task(task_run_name="settle-approval-case-{case_id}", cache_policy=NO_CACHE)
def settle(
    case_id: int, decision: dict[str, Any] | None, timeout_hours: float, now: str | None
) -> dict[str, str]:
    """Record the decision, unless already recorded (CLI); escalate when none came."""
    if not awaits_approval.fn(case_id):
        return settled("AlreadyDecided", f"case {case_id} needs no approval (now)")
    if decision is None:
        return timed_out(case_id, KIND, timeout_hours)
    record = (
        escalation.decline_enforcement
        if decision["decision"] == "decline"
        else escalation.approve_enforcement
    )
    with unit_of_work() as session:
        record(
            session,
            case_id=case_id,
            actor=decision["reviewer"],
            reason=decision["reason"],
            now=instant(resolve_now(now)),
        )
    said = f"{decision['reviewer']}: {decision['reason']}"
    return settled("Declined" if decision["decision"] == "decline" else "Approved", said)


@flow(
    name=KIND,
    flow_run_name="approve-enforcement-case-{case_id}",
    persist_result=True,
    description="Wait for a lead to approve a planned enforcement (a form on the paused run); "
    "escalate when nobody decides in time.",
)
def approve_enforcement(
    case_id: int, timeout_hours: float = 72.0, poll_seconds: int = 10, now: str | None = None
) -> State:
    """Ask a lead to approve case ``case_id``'s enforcement and record the answer."""
    label_run(case_id, KIND)
    decision = (
        wait_for_decision(
            EnforcementDecision,
            timeout_seconds=max(1, round(timeout_hours * 3600)),
            poll_seconds=poll_seconds,
        )
        if awaits_approval(case_id)
        else None
    )
    result = settle(case_id, decision.model_dump() if decision else None, timeout_hours, now)
    relay_case_events(max_artifacts=50)
    return as_state(result)
