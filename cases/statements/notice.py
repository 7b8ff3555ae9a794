"""The statement of reasons in an enforcement notice (Article 17(3) DSA), as e-mail context.

The notice and the statement submitted to the Transparency Database tell the same facts
(one catalogue, one builder); the notice adds the redress open to the developer. Wording is
in ``templates/email/partials/statement_of_reasons.*.j2``; this module only gathers facts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.models import Case, ChangeRequest, Enforcement
from cases.core.settings import Settings
from cases.lifecycle.write import SYSTEM
from cases.statements import vocabulary as v
from cases.statements.automation import decision_automation, detected_automatically
from cases.statements.build import Decision, StatementBuilder, confirmers, numeric_evidence


def decision_of(
    session: Session, *, case: Case, enforcement: Enforcement | None, now: datetime
) -> Decision:
    """The decision as its statements will tell it, for a case enforced at ``now``
    (``case.apps`` and ``case.developers`` loaded). Without an enforcement yet (a preview),
    the one the case would get now."""
    request = session.scalar(
        select(ChangeRequest)
        .where(ChangeRequest.case_id == case.id)
        .order_by(ChangeRequest.id.desc())
        .limit(1)
    )
    approved_by = enforcement.approved_by if enforcement else case.enforcement_approved_by
    return Decision(
        enforcement_id=enforcement.id if enforcement else 0,
        case_id=case.id,
        policy=case.policy,
        source=case.source,
        evidence=numeric_evidence(case.evidence),
        urgent=enforcement.urgent if enforcement else case.urgent,
        confirmed_by=confirmers(session, [case.id]).get(case.id),
        decided_by=approved_by or SYSTEM,
        decided_at=(enforcement.executed_at if enforcement else None) or now,
        notified_at=request.notified_at if request else None,
        due_at=request.due_at if request else None,
        apps=len(case.apps),
        accounts=len(case.developers),
        reversed_at=enforcement.reversed_at if enforcement else None,
    )


def reasons_context(decision: Decision, settings: Settings) -> dict[str, Any]:
    """What ``partials/statement_of_reasons`` renders, beside the policy, actions and links
    every enforcement e-mail already has."""
    statements = settings.statements
    automation = decision_automation(
        confirmed_by=decision.confirmed_by, decided_by=decision.decided_by
    )
    return {
        "facts": StatementBuilder(settings).facts(decision),
        "automated_detection": detected_automatically(decision.source),
        "automated_decision": automation.name.lower(),  # fully, partially, not_automated
        "territorial_scope": list(statements.territorial_scope),
        "whole_eu": set(statements.territorial_scope) >= v.EU_COUNTRIES,
        "end_date": None,  # a restriction stays until it is lifted (on appeal)
        "dispute_settlement": {
            "body": statements.dispute_settlement_body,
            "url": statements.dispute_settlement_url,
        },
        "courts": statements.courts,
    }


def notice_context(
    session: Session,
    *,
    case: Case,
    enforcement: Enforcement | None,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """The ``statement_of_reasons`` an enforcement notice of ``case`` renders."""
    return reasons_context(
        decision_of(session, case=case, enforcement=enforcement, now=now), settings
    )
