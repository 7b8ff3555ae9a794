"""Decision flows: a lead decides one case in a form on a paused run in the Prefect UI.

approve-enforcement and review-appeal have one shape, built by :func:`decision_flow` from a
:class:`DecisionKind`: tag the run with the case, refresh the case's artifact and link it,
wait for the lead's typed decision with the case in front of them (see :mod:`flows.hitl`),
record it through the lifecycle and end in a state named after the outcome. A decision the
lifecycle refuses is logged and asked for again; no decision in time escalates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from prefect.states import Completed, Failed
from sqlalchemy.orm import Session

from cases.core.db import get_engine, unit_of_work
from cases.core.errors import GuardFailed, TransitionNotAllowed
from cases.lifecycle import briefs, sweeper
from flows import _markdown
from flows._relay import refresh_case_artifacts, relay_case_events
from flows._tasks import instant, label_run, resolve_now
from flows.hitl import (
    TIMED_OUT,
    Kind,
    _Decision,
    decision_form,
    escalate_timeout,
    wait_for_decision,
)

REFUSED = "Refused"
# record a decision (session, case id, the form's answer, now, its origin); returns the state
Recorder = Callable[[Session, int, Any, datetime, Mapping[str, str]], str]


# a lifecycle operation a lead's decision calls (escalation.approve_enforcement, ...)
Operation = Callable[..., object]


def choosing(**choices: tuple[Operation, str]) -> Recorder:
    """The recorder of a form whose ``decision`` names one of ``choices``: each choice's
    operation is called as a lead's CLI decision would be, and its state name returned."""

    def record(
        session: Session, case_id: int, answer: Any, now: datetime, origin: Mapping[str, str]
    ) -> str:
        operation, state = choices[answer.decision]
        operation(
            session,
            case_id=case_id,
            actor=answer.reviewer,
            reason=answer.reason,
            now=now,
            origin=origin,
        )
        return state

    return record


@dataclass(frozen=True)
class DecisionKind:
    """What differs between decision flows: the form, the question, how an answer is kept."""

    name: Kind
    form: type[_Decision]
    waiting: Callable[[Session, int], bool]  # does the case still wait for this decision?
    record: Recorder  # record the decision; returns the final state's name
    timeout_hours: float
    description: str


def artifact_url(case_id: int) -> str:
    """Where the Prefect UI shows the ``case-<id>`` artifact."""
    return f"{(PREFECT_UI_URL.value() or '').rstrip('/')}/artifacts/key/case-{case_id}"


def describe(kind: DecisionKind, case_id: int) -> tuple[str, list[str] | None, str | None]:
    """The form's markdown description, the leads who may answer it and the one barred."""
    with unit_of_work() as session:
        brief = briefs.case_brief(session, case_id=case_id)
    reviewers = briefs.eligible_reviewers(brief)
    barred = brief.approved_by if kind.name == "review-appeal" else None
    if reviewers is None:
        line = "Anyone may decide (simulation mode, no leads are configured)."
    elif reviewers:
        line = "Who may decide: " + ", ".join(_markdown.md(r) for r in reviewers) + "."
    else:
        line = "**No configured lead may decide this case**: add a lead to `leads`."
    template = kind.name.replace("-", "_")
    text = _markdown.render(template, c=brief, reviewers_line=line, url=artifact_url(case_id))
    return text, reviewers, barred


def form_origin() -> dict[str, str]:
    """Where a decision recorded by this run came from: the form of its flow run in the
    Prefect UI (or the same form through Prefect's API). The reviewer is what the form said:
    Prefect authenticates who fills it in, not Caseward (see docs/orchestration.md)."""
    return {"channel": "prefect-ui", "flow_run_id": str(flow_run.id or "unknown")}


def settled(state: str, message: str) -> dict[str, str]:
    get_run_logger().info("%s: %s", state, message)
    return {"state": state, "message": message}


def as_state(result: dict[str, str]) -> State:
    """The final state of a decision run from its settle task's result."""
    if result["state"] == TIMED_OUT:
        return Failed(name=TIMED_OUT, message=result["message"])
    return Completed(name=result["state"], message=result["message"])


def decision_flow(kind: DecisionKind) -> Flow[..., State]:
    """The Prefect flow that asks a lead for a ``kind`` decision on one case."""

    @task(task_run_name=f"{kind.name}-awaits-case-{{case_id}}", cache_policy=NO_CACHE)
    def awaits(case_id: int) -> bool:
        """Whether the case still waits for this decision."""
        with unit_of_work() as session:
            return kind.waiting(session, case_id)

    @task(task_run_name=f"{kind.name}-link-case-{{case_id}}", cache_policy=NO_CACHE)
    def link_case(case_id: int) -> None:
        """Refresh the case's artifact and link it from this run."""
        refresh_case_artifacts([case_id])
        create_link_artifact(
            link=artifact_url(case_id),
            link_text=f"case-{case_id}: evidence, actions and timeline",
            description=f"Case {case_id}",
        )

    @task(task_run_name=f"{kind.name}-describe-case-{{case_id}}", cache_policy=NO_CACHE)
    def brief(case_id: int) -> tuple[str, list[str] | None, str | None]:
        """What the form shows above its fields, and who may fill it in."""
        return describe(kind, case_id)

    @task(task_run_name=f"{kind.name}-settle-case-{{case_id}}", cache_policy=NO_CACHE)
    def settle(
        case_id: int, decision: dict[str, Any] | None, timeout_hours: float, now: str | None
    ) -> dict[str, str]:
        """Record the decision, unless already recorded (CLI); escalate when none came."""
        if not awaits.fn(case_id):
            return settled("AlreadyDecided", f"case {case_id} no longer waits for a decision")
        if decision is None:
            state = escalate_timeout(case_id, kind.name, timeout_hours)
            return {"state": TIMED_OUT, "message": state.message or ""}
        answer = kind.form.model_validate(decision)
        at = instant(resolve_now(now))
        try:
            with unit_of_work() as session:
                name = kind.record(session, case_id, answer, at, form_origin())
        except (GuardFailed, TransitionNotAllowed) as exc:
            get_run_logger().warning("decision refused, asking again: %s", exc)
            return {"state": REFUSED, "message": str(exc)}
        for why in sweeper.lift_now(get_engine(), case_id=case_id, now=at).failed.values():
            get_run_logger().warning("the platform was not told yet (advance retries): %s", why)
        return settled(name, f"{answer.reviewer}: {answer.reason}")

    def run(
        case_id: int,
        timeout_hours: float = kind.timeout_hours,
        poll_seconds: int = 10,
        now: str | None = None,
    ) -> State:
        resolve_now(now)  # a simulated time outside simulation is refused before any wait
        label_run(case_id, kind.name)
        link_case(case_id)
        result: dict[str, str] | None = None
        attempt = 1
        while awaits(case_id):
            description, reviewers, barred = brief(case_id)
            form = decision_form(
                kind.form, reviewers=reviewers, barred=barred, description=description
            )
            answer = wait_for_decision(
                form,
                timeout_seconds=max(1, round(timeout_hours * 3600)),
                poll_seconds=poll_seconds,
                attempt=attempt,
            )
            result = settle(case_id, answer.model_dump() if answer else None, timeout_hours, now)
            if result["state"] != REFUSED:
                break
            attempt += 1
        if result is None:
            result = settled("AlreadyDecided", f"case {case_id} waits for no {kind.name} decision")
        relay_case_events(max_artifacts=50)
        return as_state(result)

    run.__doc__ = f"Ask a lead for the {kind.name} decision on case ``case_id``; record it."
    return flow(
        name=kind.name,
        flow_run_name=f"{kind.name}-case-{{case_id}}",
        persist_result=True,
        description=kind.description,
    )(run)
