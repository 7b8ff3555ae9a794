"""extension-request: a lead grants or declines a developer's request for more time, from the UI.

Started per request by the deployment's trigger on ``caseward.case.request_extension`` (a
developer asked on their case page), or by hand. See :mod:`flows.decisions` for the shape
and :mod:`flows.hitl` for the waiting.
"""

from __future__ import annotations

from cases.lifecycle import extensions, operations
from flows.decisions import DecisionKind, choosing, decision_flow
from flows.hitl import ExtensionDecision

EXTENSION = DecisionKind(
    name="extension-request",
    form=ExtensionDecision,
    waiting=lambda session, case_id: extensions.awaiting_decision(session, case_id=case_id),
    record=choosing(
        grant=(operations.extend, "Granted"),
        decline=(extensions.decline_extension, "Declined"),
    ),
    timeout_hours=48.0,
    description="Wait for a lead to grant or decline a developer's request for more time (a "
    "form on the paused run, with the request and the case); escalate when nobody decides "
    "in time. The deadline does not escalate while the request waits.",
)

extension_request = decision_flow(EXTENSION)
