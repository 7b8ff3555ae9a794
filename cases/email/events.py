"""SendGrid's Event Webhook: what became of each e-mail after the provider accepted it.

One POST brings a batch of events; :func:`ingest` applies it in the caller's one transaction
(all or nothing, so SendGrid's retry of a failed batch finds nothing half done):

* an event maps to its outbox row by the custom argument ``caseward_message_id``, our
  Message-ID (every backend sets it); an event without it, or for an e-mail that is not ours,
  is counted as unknown and ignored;
* each event is kept once, by its ``sg_event_id`` (``email_events``), so a batch sent again
  changes nothing;
* ``delivered`` records the delivery time (the event's own) and, once every e-mail of a
  notice is delivered, starts its deadline (:func:`cases.lifecycle.notices.notice_delivered`);
  an ``uncertain`` e-mail (a crash between SendGrid's answer and our record) was sent after
  all: it is settled as a lead's ``outbox resolve --sent`` would, without waiting for one;
* ``bounce`` and ``dropped`` fail the e-mail as a permanent failure at sending does:
  ``delivery_failed`` on the timeline, escalation blocked until a lead acts (resend it,
  or unblock the case);
* ``deferred`` (the first of each e-mail; SendGrid keeps trying) and ``spamreport`` go on the
  case timeline;
* every other kind (processed, open, click...) is counted as ignored.

None of these steps e-mails anyone, so the batch's cases are locked without their parties.

Timeline events carry the business time ``now``; an event's own time is kept as the
delivery (or bounce) time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.core.clock import YEARS
from cases.core.db import insert_on_conflict
from cases.core.enums import OutboxStatus
from cases.core.errors import InvalidInput
from cases.core.models import Case, EmailEvent, OutboxMessage
from cases.email.message import MESSAGE_ID_ARG
from cases.email.render import header_safe
from cases.lifecycle import notices, service, write
from cases.lifecycle.states import Op

DELIVERED = "delivered"
UNDELIVERED = frozenset({"bounce", "dropped"})
DEFERRED = "deferred"
SPAM_REPORT = "spamreport"
TRACKED = frozenset({DELIVERED, DEFERRED, SPAM_REPORT, *UNDELIVERED})
# the fields that explain an event, in the order they are quoted
DETAIL_FIELDS = ("type", "status", "reason", "response")
MAX_ID = 200  # the longest sg_event_id or Message-ID kept (both are far shorter)


@dataclass(frozen=True)
class ProviderEvent:
    """One tracked event of the webhook, as Caseward reads it."""

    sg_event_id: str
    kind: str
    message_id: str
    occurred_at: datetime
    detail: str = ""


@dataclass
class IngestReport:
    """What one batch did: events received, newly recorded, seen before, not ours, of a kind
    Caseward does not track, or malformed."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0
    ignored: int = 0
    invalid: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None


def _instant(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        at = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return at if at.year in YEARS else None


def _detail(item: dict[str, Any]) -> str:
    """The receiving server's words (untrusted text): one line, controls removed, short."""
    parts = [str(item[key]) for key in DETAIL_FIELDS if item.get(key) not in (None, "")]
    return header_safe("; ".join(parts), limit=300)


def parse_batch(payload: Any) -> tuple[list[ProviderEvent], IngestReport]:
    """The tracked events of a webhook body (already parsed JSON), and the count of the rest.

    A body that is not a JSON array is refused (:class:`InvalidInput`); inside it, an event
    lacking what Caseward needs is counted (invalid, ignored, unknown), never fatal, so one
    odd event cannot make SendGrid resend a whole batch for days.
    """
    if not isinstance(payload, list):
        raise InvalidInput("the body is not a JSON array of SendGrid events")
    report = IngestReport(received=len(payload))
    events: list[ProviderEvent] = []
    for item in payload:
        if not isinstance(item, dict) or not isinstance(item.get("event"), str):
            report.invalid += 1
            continue
        if item["event"] not in TRACKED:
            report.ignored += 1
            continue
        message_id = _text(item, MESSAGE_ID_ARG)
        if message_id is None:
            report.unknown += 1
            continue
        sg_event_id, at = _text(item, "sg_event_id"), _instant(item.get("timestamp"))
        if sg_event_id is None or at is None:
            report.invalid += 1
            continue
        events.append(ProviderEvent(sg_event_id, item["event"], message_id, at, _detail(item)))
    return events, report


def ingest(
    session: Session,
    *,
    events: Sequence[ProviderEvent],
    now: datetime,
    report: IngestReport | None = None,
) -> IngestReport:
    """Apply a batch of events in the caller's transaction (see the module doc); returns
    ``report`` (a new one if none is given) with what the batch did. Never commits."""
    report = report or IngestReport(received=len(events))
    unique = list({e.sg_event_id: e for e in events}.values())
    report.duplicates += len(events) - len(unique)
    messages = _locked_messages(session, {e.message_id for e in unique})
    known = sorted(
        (e for e in unique if e.message_id in messages),
        key=lambda e: (e.occurred_at, e.sg_event_id),
    )
    report.unknown += len(unique) - len(known)
    stored = _store(session, known, messages, now)
    report.duplicates += len(known) - len(stored)
    report.recorded += len(stored)
    fresh = [e for e in known if e.sg_event_id in stored]
    if not fresh:
        return report
    case_ids = sorted({messages[e.message_id].case_id for e in fresh})
    locked = service.get_many(session, case_ids=case_ids, lock=True, parties=False)
    cases = {case.id: case for case in locked}  # locked in id order: no deadlock
    write.remember_latest_events(session, case_ids)
    first_deferrals = _first_deferrals(session, {stored[e.sg_event_id] for e in fresh})
    delivered: dict[int, OutboxMessage] = {}  # by id, in the order they were delivered
    for event in fresh:
        message = messages[event.message_id]
        if event.kind == DELIVERED:
            if message.status == OutboxStatus.UNCERTAIN:
                _settle_uncertain(session, message, event, now)
            message.delivered_at = message.delivered_at or event.occurred_at
            delivered[message.id] = message
        elif event.kind in UNDELIVERED:
            _undelivered(session, cases[message.case_id], message, event, now)
        elif event.kind == SPAM_REPORT or stored[event.sg_event_id] in first_deferrals:
            _on_timeline(session, cases[message.case_id], message, event, now)
    session.flush()
    notices.notices_delivered(
        session,
        cases=cases,
        delivered=[
            notices.Delivered(m.case_id, m.event_id, m.sent_at)
            for m in delivered.values()
            if m.status == OutboxStatus.SENT and m.sent_at is not None
        ],
        now=now,
    )
    return report


def _locked_messages(session: Session, message_ids: set[str]) -> dict[str, OutboxMessage]:
    """The outbox rows of ``message_ids`` by Message-ID, locked in id order (as delivery
    locks a row before its case)."""
    if not message_ids:
        return {}
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.message_id.in_(sorted(message_ids)))
        .order_by(OutboxMessage.id)
        .with_for_update(of=OutboxMessage)
    )
    return {m.message_id: m for m in session.scalars(query)}


def _store(
    session: Session, events: list[ProviderEvent], messages: dict[str, OutboxMessage], now: datetime
) -> dict[str, int]:
    """Insert the events not stored yet (``ON CONFLICT (sg_event_id) DO NOTHING``), oldest
    first; the new ones' ids by ``sg_event_id``."""
    if not events:
        return {}
    rows = [
        {
            "sg_event_id": e.sg_event_id,
            "outbox_id": messages[e.message_id].id,
            "kind": e.kind,
            "occurred_at": e.occurred_at,
            "received_at": now,
            "detail": e.detail,
        }
        for e in events
    ]
    insert = insert_on_conflict(session, EmailEvent)
    new = insert.on_conflict_do_nothing(index_elements=[EmailEvent.sg_event_id])
    returned = session.execute(new.returning(EmailEvent.sg_event_id, EmailEvent.id), rows)
    return {sg_event_id: row_id for sg_event_id, row_id in returned}


def _first_deferrals(session: Session, new_ids: set[int]) -> set[int]:
    """Of the events just stored, the first deferral of each e-mail (ids, stored oldest
    first, tell which came first)."""
    first = (
        select(func.min(EmailEvent.id))
        .where(
            EmailEvent.kind == DEFERRED,
            EmailEvent.outbox_id.in_(
                select(EmailEvent.outbox_id).where(EmailEvent.id.in_(sorted(new_ids)))
            ),
        )
        .group_by(EmailEvent.outbox_id)
    )
    return set(session.scalars(first)) & new_ids


def _settle_uncertain(
    session: Session, message: OutboxMessage, event: ProviderEvent, now: datetime
) -> None:
    """SendGrid delivered an e-mail we could not tell was sent: it was, at its claim."""
    message.status = OutboxStatus.SENT
    message.sent_at = message.claimed_at or event.occurred_at
    notices.delivery_resolved(
        session,
        case_id=message.case_id,
        outbox_id=message.id,
        resend=False,
        actor=write.SYSTEM,
        reason=f"e-mail {message.id} ({message.template}) was uncertain; SendGrid reported "
        "it delivered, so it was sent",
        now=now,
    )


def _undelivered(
    session: Session, case: Case, message: OutboxMessage, event: ProviderEvent, now: datetime
) -> None:
    """A bounce or drop: a sent (or uncertain) e-mail fails and blocks its case. One still
    being recorded keeps the news for delivery to find (``bounced_at``); a failed one is
    blocked already, and a pending one is a resend whose fate is still open."""
    if message.status in (OutboxStatus.FAILED, OutboxStatus.PENDING) or message.bounced_at:
        return
    if message.status == OutboxStatus.SENDING and (
        message.claimed_at is None or event.occurred_at < message.claimed_at
    ):
        return  # about an earlier send of this row, not the one in flight
    message.bounced_at = event.occurred_at
    message.last_error = f"SendGrid reported {event.kind}: {event.detail or 'no details'}"
    if message.status == OutboxStatus.SENDING:
        return  # delivery records it as failed (cases.email.delivery.record_attempt)
    message.status = OutboxStatus.FAILED
    notices._delivery_failed(
        session, case=case, outbox_id=message.id, error=message.last_error, now=now
    )


def _on_timeline(
    session: Session, case: Case, message: OutboxMessage, event: ProviderEvent, now: datetime
) -> None:
    """A deferral or a spam report, for the lead to see."""
    what = f"e-mail {message.id} ({message.template})"
    if event.kind == DEFERRED:
        op = Op.DELIVERY_DEFERRED
        reason = (
            f"{what} was deferred by the receiving server; SendGrid keeps trying: "
            f"{event.detail or 'no details'}"
        )
    else:
        op = Op.SPAM_REPORTED
        reason = (
            f"the developer reported {what} as spam; SendGrid drops later e-mail to "
            "this address until the report is removed from its suppressions"
        )
    notices.delivery_reported(
        session, case=case, outbox_id=message.id, op=op, reason=reason, now=now
    )
