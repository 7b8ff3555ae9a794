"""approve-enforcement: a lead approves (or declines) a planned enforcement from the UI.

Started per case by the deployment's trigger on an escalation that needs approval
(``caseward.case.escalate`` with ``caseward.needs_approval`` = ``true``), by hand, or by
the CLI. See :mod:`flows.decisions` for the shape and :mod:`flows.hitl` for the waiting.
"""

from __future__ import annotations

from cases.lifecycle import escalation
from flows.decisions import DecisionKind, choosing, decision_flow
from flows.hitl import EnforcementDecision

APPROVAL = DecisionKind(
    name="approve-enforcement",
    form=EnforcementDecision,
    waiting=lambda session, case_id: escalation.awaiting_approval(session, case_id=case_id),
    record=choosing(
        approve=(escalation.approve_enforcement, "Approved"),
        decline=(escalation.decline_enforcement, "Declined"),
    ),
    timeout_hours=72.0,
    description="Wait for a lead to approve a planned enforcement (a form on the paused run, "
    "with the evidence and the impact); escalate when nobody decides in time.",
)

approve_enforcement = decision_flow(APPROVAL)
