"""Every case operation of the services by name, and the check that a refusal changes nothing.

Shared by the guard, property and CLI tests: ``OPERATIONS[name] = (op, call)`` where
``call(session, case_id, now)`` performs the operation the way its caller would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine

from cases.core.db import session_scope
from cases.core.enums import CaseStatus
from cases.core.errors import UsageError
from cases.enforcement import appeals
from cases.enforcement.platform.registry import RegistryAdapter
from cases.lifecycle import escalation, extensions, operations, service
from cases.lifecycle.states import EVENTS, TRANSITIONS, Op
from tests import factories as f
from tests.factories import T0, days

S = CaseStatus
LATE = T0 + days(400)  # every deadline has passed
Operation = Callable[[object, int, datetime], object]


# Each service operation, the Op it performs, and how to call it at ``now``.
OPERATIONS: dict[str, tuple[Op, Operation]] = {
    "confirm": (
        Op.CONFIRM,
        lambda s, i, now: operations.confirm(s, case_id=i, actor="lead-ann", reason="r", now=now),
    ),
    "dismiss": (
        Op.DISMISS,
        lambda s, i, now: operations.dismiss(s, case_id=i, actor="lead-ann", reason="r", now=now),
    ),
    "send_outreach": (
        Op.SEND_OUTREACH,
        lambda s, i, now: operations.send_outreach(s, case_id=i, now=now),
    ),
    "request_changes": (
        Op.REQUEST_CHANGES,
        lambda s, i, now: operations.request_changes(
            s, case_id=i, actor="lead-ann", reason="r", now=now
        ),
    ),
    "report_compliance": (
        Op.REPORT_COMPLIANCE,
        lambda s, i, now: operations.report_compliance(
            s, case_id=i, actor="dev", statement="done", now=now
        ),
    ),
    "reject_compliance": (
        Op.REJECT_COMPLIANCE,
        lambda s, i, now: operations.reject_compliance(
            s, case_id=i, actor="lead-ann", reason="r", now=now
        ),
    ),
    "resolve": (
        Op.RESOLVE,
        lambda s, i, now: operations.resolve(s, case_id=i, actor="lead-ann", reason="r", now=now),
    ),
    "escalate": (
        Op.ESCALATE,
        lambda s, i, now: escalation.escalate(s, case_id=i, now=now),
    ),
    "approve_enforcement": (
        Op.APPROVE_URGENT,
        lambda s, i, now: escalation.approve_enforcement(
            s, case_id=i, actor="lead-ann", reason="r", now=now
        ),
    ),
    "decline_enforcement": (
        Op.DECLINE_ENFORCEMENT,
        lambda s, i, now: escalation.decline_enforcement(
            s, case_id=i, actor="lead-ann", reason="r", now=now
        ),
    ),
    "enforce": (
        Op.ENFORCE,
        lambda s, i, now: escalation.enforce(s, case_id=i, adapter=RegistryAdapter(s), now=now),
    ),
    "submit_appeal": (
        Op.SUBMIT_APPEAL,
        lambda s, i, now: appeals.submit_appeal(s, case_id=i, actor="dev", statement="x", now=now),
    ),
    "uphold": (
        Op.UPHOLD,
        lambda s, i, now: appeals.decide_appeal(
            s,
            case_id=i,
            reviewer="lead-bob",
            overturn=False,
            reason="r",
            now=now,
        ),
    ),
    "overturn": (
        Op.OVERTURN,
        lambda s, i, now: appeals.decide_appeal(
            s,
            case_id=i,
            reviewer="lead-bob",
            overturn=True,
            reason="r",
            now=now,
        ),
    ),
    "close_unappealed": (
        Op.CLOSE,
        lambda s, i, now: escalation.close_unappealed(s, case_id=i, now=now),
    ),
    "extend": (
        Op.EXTEND,
        lambda s, i, now: operations.extend(s, case_id=i, actor="lead-ann", reason="r", now=now),
    ),
    "request_extension": (
        Op.REQUEST_EXTENSION,
        lambda s, i, now: extensions.request_extension(
            s, case_id=i, actor="developer:d", statement="more time", now=now
        ),
    ),
    "decline_extension": (
        Op.DECLINE_EXTENSION,
        lambda s, i, now: extensions.decline_extension(
            s, case_id=i, actor="lead-ann", reason="r", now=now
        ),
    ),
    "acknowledge": (
        Op.ACKNOWLEDGE,
        lambda s, i, now: operations.acknowledge(
            s, case_id=i, actor="dev", statement="ok", now=now
        ),
    ),
    "add_evidence": (
        Op.EVIDENCE_REFRESHED,
        lambda s, i, now: service.add_evidence(s, case_id=i, note="seen", actor="ann", now=now),
    ),
    "refresh_evidence": (
        Op.EVIDENCE_REFRESHED,
        lambda s, i, now: service.refresh_evidence(
            s,
            case_id=i,
            evidence={"x": 1},
            score=1.0,
            app_ids=[],
            developer_ids=[],
            actor="detector",
            now=now,
        ),
    ),
}


def _allowed(op: Op, status: CaseStatus) -> bool:
    if op in TRANSITIONS:
        return status in TRANSITIONS[op].sources
    if op is Op.APPROVE_URGENT:  # pragma: no cover - listed under TRANSITIONS
        return False
    return status in EVENTS[op].allowed_in


def allowed_by_name(name: str, status: CaseStatus) -> bool:
    op = OPERATIONS[name][0]
    if name == "approve_enforcement":  # urgent before enforcement, an approval when due
        return _allowed(Op.APPROVE_URGENT, status) or _allowed(Op.APPROVE_ENFORCEMENT, status)
    return _allowed(op, status)


def refused(
    engine: Engine,
    case_id: int,
    call: Callable[[object], object],
    error: type[UsageError] | tuple[type[UsageError], ...] = UsageError,
    match: str | None = None,
) -> UsageError:
    """Run ``call`` in a unit of work, expect ``error``, and check nothing changed."""
    before = f.db_state(engine, case_id)
    with pytest.raises(error, match=match) as raised, session_scope(engine) as session:
        call(session)
    assert f.db_state(engine, case_id) == before
    return raised.value
