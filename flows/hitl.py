"""Human in the loop: a run waits for a lead's typed decision, from the UI or the CLI.

A decision flow (approve-enforcement, review-appeal, extension-request) tags its run
``case:<id>`` and waits for a :class:`~prefect.input.RunInput` form the Prefect UI shows on the
paused run:

* run in-process (``caseward demo``, tests, a plain ``python`` call) it **pauses**, polling
  the API, up to its timeout;
* run from a deployment it **suspends**: the process exits and no worker is held; the run is
  re-submitted when resumed and reads the input it was given.

The same decision can come from ``caseward cases approve-enforcement`` or ``caseward appeal
decide``: the command records it, then calls :func:`resume_waiting`, and the flow, finding it
already recorded, records nothing. A suspended run whose timeout passes is failed with the
state name ``TimedOut`` by :func:`expire_waiting` (a task of advance-cases); a paused run times
out by itself. Both escalate the same way: an ERROR log, a ``caseward.case.decision_timed_out``
event (for an Automation to notify someone) and the markdown artifact ``case-<id>-escalation``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.states import Failed, Running
from pydantic import Field, create_model, field_validator

Kind = Literal["approve-enforcement", "review-appeal", "extension-request"]
KINDS: tuple[Kind, ...] = ("approve-enforcement", "review-appeal", "extension-request")
TIMED_OUT = "TimedOut"
T = TypeVar("T", bound=RunInput)
DECIDE_COMMANDS = {
    "approve-enforcement": "caseward cases approve-enforcement {case_id} --reason TEXT",
    "review-appeal": "caseward appeal decide {case_id} --uphold|--overturn --reason TEXT",
    "extension-request": "caseward cases extend|decline-extension {case_id} --reason TEXT",
}


class _Decision(RunInput):
    """A lead's typed decision; who may decide is part of the form's JSON schema.

    The server validates a submitted form against that schema before it resumes the run, so
    a reviewer the lifecycle would refuse is refused in the UI and the run keeps waiting.
    The validator below applies the same constraint when the flow loads the input.
    """

    decision: str  # each kind narrows it to its choices (declared here to come first)
    reason: str = Field(min_length=1, description="Why; the developer reads it.")
    reviewer: str = Field(min_length=1, description="The lead who decides.")

    @field_validator("reviewer")
    @classmethod
    def _may_decide(cls, value: str) -> str:
        extra = cls.model_fields["reviewer"].json_schema_extra
        rules = extra if isinstance(extra, dict) else {}
        allowed = rules.get("enum")
        if isinstance(allowed, list) and value not in allowed:
            raise ValueError(f"{value!r} may not decide this case (allowed: {allowed})")
        barred = rules.get("not")
        if isinstance(barred, dict) and value == barred.get("const"):
            raise ValueError(f"{value!r} approved this enforcement; another lead must decide")
        return value


class EnforcementDecision(_Decision):
    """A lead's decision on a planned enforcement that needs approval."""

    decision: Literal["approve", "decline"] = Field(
        description="approve: the next advance-cases run applies the actions."
    )


class AppealDecision(_Decision):
    """A lead's decision on a developer's appeal (not the lead who approved the enforcement)."""

    decision: Literal["uphold", "overturn"] = Field(
        description="overturn: every action is reversed and access restored."
    )


class ExtensionDecision(_Decision):
    """A lead's answer to a developer's request for more time."""

    decision: Literal["grant", "decline"] = Field(
        description="grant: the case's one extension (deadline.extension_days); decline: "
        "the deadline stands and the next advance-cases run may escalate."
    )


def decision_form(
    model: type[T], *, reviewers: list[str] | None, barred: str | None, description: str
) -> type[T]:
    """``model`` for one case: the reviewer limited to ``reviewers`` (None: anyone) other
    than ``barred``, and ``description`` shown above the form."""
    rules: dict[str, Any] = {}
    if reviewers is not None:
        rules["enum"] = [r for r in reviewers if r != barred]
    elif barred:
        rules["not"] = {"const": barred}
    reviewer = Field(min_length=1, description="The lead who decides.", json_schema_extra=rules)
    form = create_model(model.__name__, __base__=model, reviewer=(str, reviewer))
    return form.with_initial_data(description=description)


def wait_for_decision(
    model: type[T], *, timeout_seconds: int, poll_seconds: int, attempt: int = 1
) -> T | None:
    """The lead's input, or None when the wait timed out (paused runs; see module doc).

    Each ``attempt`` is its own pause: a suspended run re-executed after a refused decision
    gets the earlier answers back in order and then waits anew.
    """
    context = FlowRunContext.get()
    deployed = bool(context and context.flow_run and context.flow_run.deployment_id)
    key = f"decision-{attempt}"
    try:
        if deployed:
            return suspend_flow_run(wait_for_input=model, timeout=timeout_seconds, key=key)
        return pause_flow_run(
            wait_for_input=model, timeout=timeout_seconds, poll_interval=poll_seconds, key=key
        )
    except FlowPauseTimeout:
        # The server would now fail the run itself; take it back to Running so the run can
        # record the escalation and end with its own TimedOut state.
        if context is not None and context.flow_run is not None:
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(context.flow_run.id, Running(), force=True)
        return None


def _escalation(case_id: int, kind: str, reason: str) -> None:
    emit_event(
        event="caseward.case.decision_timed_out",
        resource={
            "prefect.resource.id": f"caseward.case.{case_id}",
            "prefect.resource.name": f"case {case_id}",
            "caseward.case_id": str(case_id),
        },
        payload={"kind": kind, "reason": reason},
    )
    create_markdown_artifact(
        key=f"case-{case_id}-escalation",
        markdown=f"# Case {case_id}: {kind} decision overdue\n\n{reason}.\n\n"
        f"Decide with `{DECIDE_COMMANDS.get(kind, 'caseward').format(case_id=case_id)}`, "
        "or start the flow again.\n",
        description=f"Case {case_id}: a {kind} decision is overdue",
    )


def escalate_timeout(case_id: int, kind: str, timeout_hours: float) -> State:
    """No decision came in time: log, event and artifact; the run ends Failed 'TimedOut'."""
    reason = f"no {kind} decision on case {case_id} within {timeout_hours:g} hour(s)"
    get_run_logger().error("escalation: %s", reason)
    _escalation(case_id, kind, reason)
    return Failed(name=TIMED_OUT, message=reason)


def _case_id(tags: list[str]) -> int | None:
    found = [t.removeprefix("case:") for t in tags if t.startswith("case:")]
    return int(found[0]) if found and found[0].isdigit() else None


@task(name="expire-waiting-decisions", cache_policy=NO_CACHE)
def expire_waiting() -> list[int]:
    """Fail, as TimedOut, every suspended decision run past its timeout; escalate each."""
    expired: list[int] = []
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(KINDS))),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.PAUSED]),
                    name=FlowRunFilterStateName(any_=["Suspended"]),
                )
            ),
            sort=FlowRunSort.ID_DESC,
            limit=200,
        )
        for run in runs:
            timeout = run.state.state_details.pause_timeout if run.state else None
            case_id = _case_id(run.tags)
            if timeout is None or timeout > now or case_id is None:
                continue
            kind = next((k for k in KINDS if k in run.tags), "decision")
            reason = f"no {kind} decision on case {case_id} by {timeout:%Y-%m-%d %H:%M} UTC"
            client.set_flow_run_state(run.id, Failed(name=TIMED_OUT, message=reason), force=True)
            _escalation(case_id, kind, reason)
            expired.append(case_id)
    if expired:
        get_run_logger().error("escalated overdue decisions on cases %s", expired)
    return expired


def waiting_runs(case_id: int, kind: Kind) -> list[UUID]:
    """Paused or suspended runs of ``kind`` about ``case_id``, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[kind])),
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"case:{case_id}"]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            ),
            sort=FlowRunSort.ID_DESC,
            limit=50,
        )
    oldest = datetime.min.replace(tzinfo=UTC)
    return [run.id for run in sorted(runs, key=lambda r: r.created or oldest)]


def resume_waiting(case_id: int, kind: Kind, decision: str, reason: str, reviewer: str) -> bool:
    """Resume the waiting ``kind`` run(s) of ``case_id`` with this decision; False if none.

    Called by the CLI after it recorded the decision; the resumed run records nothing again.
    """
    resumed = False
    run_input = {"decision": decision, "reason": reason, "reviewer": reviewer}
    for run_id in waiting_runs(case_id, kind):
        resume_flow_run(run_id, run_input=run_input)
        resumed = True
    return resumed
