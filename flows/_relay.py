"""The event relay: Caseward's ``case_events`` become Prefect events and per-case artifacts.

Every change to a case, from a flow or from the CLI, appends a ``case_events`` row. The relay
reads the rows past a stored cursor (``RelayCursor``) and

* emits one Prefect event per row, ``caseward.case.<kind>`` with the case as its resource
  (``caseward.case.<id>``, labelled with policy and status), so Automations can react;
* refreshes the markdown artifact ``case-<id>`` (status and full timeline) of every case it
  touched, a bounded number per run (an artifact costs a round trip; a backlog drains over
  the next runs).

Each Prefect event's id is derived from the row id, so a row relayed twice (two relays racing,
or a crash before the cursor moved) is the same event, which Prefect stores once. The cursor
only moves forward, with a compare-and-set.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from sqlalchemy import select, update

from cases.core.db import unit_of_work
from cases.core.models import Case, CaseEvent, RelayCursor
from cases.lifecycle import briefs
from flows import _markdown

EVENTS_CURSOR = "prefect-events"
ARTIFACTS_CURSOR = "prefect-artifacts"
NAMESPACE = uuid.UUID("6f1d0a52-7c1e-4a55-9a57-1b1f8a0c2e11")


def event_uuid(event_id: int) -> uuid.UUID:
    """The Prefect event id of ``case_events`` row ``event_id`` (stable: re-sends dedupe)."""
    return uuid.uuid5(NAMESPACE, f"case-event-{event_id}")


def case_resource(
    case_id: int, policy: str, status: str, data: dict[str, Any] | None = None
) -> dict[str, str]:
    """The case as a Prefect resource; an escalation also says whether a lead must approve
    (``caseward.needs_approval``), which is what the approve-enforcement trigger matches."""
    resource = {
        "prefect.resource.id": f"caseward.case.{case_id}",
        "prefect.resource.name": f"case {case_id}",
        "caseward.case_id": str(case_id),
        "caseward.policy": policy,
        "caseward.status": status,
    }
    if data and "requires_approval" in data:
        resource["caseward.needs_approval"] = str(bool(data["requires_approval"])).lower()
    return resource


def _read_cursor(name: str) -> int:
    with unit_of_work() as session:
        cursor = session.get(RelayCursor, name)
        if cursor is None:
            session.add(RelayCursor(name=name, last_event_id=0))
            return 0
        return cursor.last_event_id


def _move_cursor(name: str, old: int, new: int) -> bool:
    """Compare-and-set: False when another relay moved it first (its work was the same)."""
    with unit_of_work() as session:
        result = session.execute(
            update(RelayCursor)
            .where(RelayCursor.name == name, RelayCursor.last_event_id == old)
            .values(last_event_id=new)
        )
        return bool(getattr(result, "rowcount", 0))


def emit_case_events(max_events: int) -> int:
    """Emit the Prefect event of every row past the cursor (at most ``max_events``)."""
    after = _read_cursor(EVENTS_CURSOR)
    with unit_of_work() as session:
        rows = session.execute(
            select(CaseEvent, Case.policy)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(CaseEvent.id > after)
            .order_by(CaseEvent.id)
            .limit(max_events)
        ).all()
    for event, policy in rows:
        emit_event(
            event=f"caseward.case.{event.kind}",
            resource=case_resource(event.case_id, policy, event.to_status, event.data),
            payload={
                "event_id": event.id,
                "at": event.at.isoformat(),
                "actor": event.actor,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "reason": event.reason,
            },
            id=event_uuid(event.id),
        )
    if rows:
        _move_cursor(EVENTS_CURSOR, after, rows[-1][0].id)
    return len(rows)


def _cases_to_refresh(after: int, max_cases: int, scan: int) -> tuple[list[int], int]:
    """The first ``max_cases`` distinct cases with rows past ``after``, and the last row id
    whose case is among them (the new cursor)."""
    with unit_of_work() as session:
        rows = session.execute(
            select(CaseEvent.id, CaseEvent.case_id)
            .where(CaseEvent.id > after)
            .order_by(CaseEvent.id)
            .limit(scan)
        ).all()
    chosen: dict[int, None] = {}
    last = after
    for event_id, case_id in rows:
        if case_id not in chosen and len(chosen) >= max_cases:
            break
        chosen[case_id] = None
        last = event_id
    return list(chosen), last


def refresh_case_artifacts(case_ids: Sequence[int]) -> int:
    """Write the ``case-<id>`` markdown artifact of each case (a few queries for all)."""
    with unit_of_work() as session:
        pages = [
            (b.id, b.status, _markdown.render("case", c=b))
            for b in briefs.case_briefs(session, case_ids=case_ids)
        ]
    for case_id, status, markdown in pages:
        create_markdown_artifact(
            markdown=markdown,
            key=f"case-{case_id}",
            description=f"Case {case_id}: {status.replace('_', ' ')}",
        )
    return len(pages)


def relay_once(*, max_events: int = 20_000, max_artifacts: int = 300) -> dict[str, int]:
    """One pass of the relay (outside Prefect's task machinery, for reuse and tests)."""
    emitted = emit_case_events(max_events)
    after = _read_cursor(ARTIFACTS_CURSOR)
    case_ids, last = _cases_to_refresh(after, max_artifacts, max_events)
    refreshed = refresh_case_artifacts(case_ids) if case_ids else 0
    if last > after:
        _move_cursor(ARTIFACTS_CURSOR, after, last)
    return {"events": emitted, "artifacts": refreshed}


@task(name="relay-case-events", cache_policy=NO_CACHE)
def relay_case_events(max_events: int = 20_000, max_artifacts: int = 300) -> dict[str, int]:
    """Emit a Prefect event per new case event and refresh the touched cases' artifacts."""
    done = relay_once(max_events=max_events, max_artifacts=max_artifacts)
    get_run_logger().info(
        "relayed %s case event(s); refreshed %s case artifact(s)", done["events"], done["artifacts"]
    )
    return done
