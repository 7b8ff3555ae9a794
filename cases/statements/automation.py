"""Whether automated means detected a case and decided its restriction (Article 17(3)(c)).

Derived from what the case's records say, never asserted: the case's ``source`` tells who
found it, and the actors of the two decisive steps tell who decided: the confirmation that
the case is a violation, and the enforcement decision (a reviewer's approval, or Caseward's
sweeper after a missed deadline). Caseward itself (``caseward``) and triage rules (actors
named ``rule:<name>``) are automated means; every other actor is a person.
"""

from __future__ import annotations

from enum import StrEnum

from cases.lifecycle.write import SYSTEM

RULE_PREFIX = "rule:"
DETECTION_SOURCE = "detection"


class Automation(StrEnum):
    """The Transparency Database's ``automated_decision`` values."""

    FULLY = "AUTOMATED_DECISION_FULLY"
    PARTIALLY = "AUTOMATED_DECISION_PARTIALLY"
    NOT_AUTOMATED = "AUTOMATED_DECISION_NOT_AUTOMATED"


def is_automated(actor: str | None) -> bool:
    """Whether ``actor`` is a machine: Caseward, a triage rule, or nobody recorded."""
    return actor is None or actor == SYSTEM or actor.startswith(RULE_PREFIX)


def detected_automatically(source: str) -> bool:
    """A case a detector opened was found by automated means."""
    return source == DETECTION_SOURCE


def decision_automation(*, confirmed_by: str | None, decided_by: str) -> Automation:
    """Fully automated when no person took either decisive step, not automated when people
    took both, partially automated otherwise (a reviewer confirmed the case and the sweeper
    enforced it after the deadline, or a rule confirmed it and a reviewer approved)."""
    machines = [is_automated(confirmed_by), is_automated(decided_by)]
    if all(machines):
        return Automation.FULLY
    if any(machines):
        return Automation.PARTIALLY
    return Automation.NOT_AUTOMATED
