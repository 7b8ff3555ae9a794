"""The outbox: a lifecycle step's e-mails, rendered and stored in the step's transaction.

The write path calls :func:`enqueue` inside its own transaction, once per template an
operation causes; the rows it adds are delivered later by :mod:`cases.email.delivery`.
Nothing is sent here and nothing is committed: if the step rolls back, so do its e-mails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.db import insert_on_conflict
from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.models import Case, CaseEvent, OutboxMessage
from cases.core.settings import Settings, get_settings
from cases.email.context import developer_context, renderer_for, shared_context
from cases.email.message import message_id_for


def idempotency_key(
    *, case_id: int, event_seq: int, template: EmailTemplate | str, developer_id: str
) -> str:
    """One e-mail per case, event (its number in the case), template and developer."""
    return f"case-{case_id}-seq-{event_seq}-{template}-{developer_id}"


def render_rows(
    *,
    case: Case,
    event_seq: int,
    template: EmailTemplate,
    now: datetime,
    extra: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows of ``template`` for every developer of ``case`` (event ``event_seq``).

    What every recipient shares is gathered once per case and template
    (:func:`~cases.email.context.shared_context`), and per recipient only what differs is
    added (:func:`~cases.email.context.developer_context`); the parts of the e-mail that read
    only shared values are rendered once for all (:meth:`Renderer.render_each`). Rendering
    problems raise here and roll the transition back.
    """
    settings = settings or get_settings()
    renderer = renderer_for(settings)
    shared = shared_context(
        case=case,
        template=template,
        now=now,
        extra=extra,
        settings=settings,
        catalog=renderer.catalog,
    )
    recipients = list(case.developers)
    contexts = [developer_context(shared, case, d, settings) for d in recipients]
    rows: list[dict[str, Any]] = []
    for developer, rendered in zip(
        recipients, renderer.render_each(template, contexts), strict=True
    ):
        key = idempotency_key(
            case_id=case.id, event_seq=event_seq, template=template, developer_id=developer.id
        )
        rows.append(
            {
                "case_id": case.id,
                "template": str(template),
                "developer_id": developer.id,
                "to_address": developer.email,
                "subject": rendered.subject,
                "text_body": rendered.text,
                "html_body": rendered.html,
                "idempotency_key": key,
                "message_id": message_id_for(key, settings.email.sender),
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
        )
    return rows


def enqueue(
    session: Session,
    *,
    case: Case,
    event: CaseEvent,
    template: EmailTemplate,
    now: datetime,
    extra: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> list[OutboxMessage]:
    """Render ``template`` for every developer of ``case`` and add one pending row each.

    Runs inside the caller's transaction and never commits. ``case.developers`` and
    ``case.apps`` must be loaded. Calling it again for a stored event and template adds
    nothing and returns the rows already stored (the idempotency key is unique).
    The address is validated at delivery, where a bad one fails permanently and shows on
    the case; rendering problems raise here and roll the transition back.

    A new event's rows are added to the session linked to it, so a batch of steps is
    written in one flush; for an event already stored, the rows go in with one
    ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING`` and the unique key
    decides (only a repeated call reads the stored rows back).
    """
    rows = render_rows(
        case=case, event_seq=event.seq, template=template, now=now, extra=extra, settings=settings
    )
    if not rows:
        return []
    if event.id is None:  # new in this unit of work: it can have no rows yet
        messages = [OutboxMessage(event=event, **row) for row in rows]
        session.add_all(messages)
        return messages
    return _store(session, [row | {"event_id": event.id} for row in rows])


def _store(session: Session, rows: list[dict[str, Any]]) -> list[OutboxMessage]:
    """Insert ``rows`` unless their key is stored; the stored rows, in the order of ``rows``."""
    insert = insert_on_conflict(session, OutboxMessage)
    new = insert.on_conflict_do_nothing(index_elements=[OutboxMessage.idempotency_key])
    stored = {m.idempotency_key: m for m in session.scalars(new.returning(OutboxMessage), rows)}
    missing = [r["idempotency_key"] for r in rows if r["idempotency_key"] not in stored]
    if missing:
        query = select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(missing))
        stored.update((m.idempotency_key, m) for m in session.scalars(query))
    return [stored[r["idempotency_key"]] for r in rows]
