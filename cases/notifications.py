"""Developer e-mail of a lifecycle step: render it and store it in the step's transaction.

The lifecycle calls :func:`enqueue` inside its own transaction, once per template an operation
causes; the rows it adds are delivered later by :mod:`cases.outbox`. Nothing is sent here and
nothing is committed: if the transition rolls back, so do its e-mails.

The wording is in ``templates/email/`` (templates, partials and ``catalog.toml``); this module
only gathers the facts a template needs into a plain-data context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.models import App, Case, CaseEvent, Developer, OutboxMessage
from cases.core.settings import Settings, get_settings
from cases.mail.message import message_id_for
from cases.mail.render import RenderedEmail, Renderer, get_renderer


def renderer_for(settings: Settings) -> Renderer:
    """The renderer of the configured template folder."""
    return get_renderer(settings.email.template_dir)


def case_ref(case_id: int, settings: Settings) -> str:
    """The reference a developer quotes, e.g. ``CW-42``; it opens every subject."""
    return f"{settings.email.case_ref_prefix}{case_id}"


def idempotency_key(
    *, case_id: int, event_seq: int, template: EmailTemplate | str, developer_id: str
) -> str:
    """One e-mail per case, event (its number in the case), template and developer."""
    return f"case-{case_id}-seq-{event_seq}-{template}-{developer_id}"


def _web_link(url: str) -> str | None:
    """``url`` if it is safe to put in an ``href`` (http/https only, never ``javascript:``)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in {"http", "https"} and parts.netloc else None


def one_line(text: str) -> str:
    """Developer-controlled text shown inline: line breaks and runs of spaces collapse."""
    return " ".join(str(text).split())


def _app_data(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": one_line(app.name),
        "description": one_line(app.description or ""),
        "website": app.website or "",
        "website_url": _web_link(app.website or ""),
    }


def _plain(value: Any, max_items: int) -> str:
    """An evidence value in plain words: lists joined, mappings as ``key: value``."""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Mapping):
        items = [f"{k}: {_plain(v, max_items)}" for k, v in list(value.items())[:max_items]]
        extra = len(value) - max_items
        return "; ".join(items) + (f"; +{extra} more" if extra > 0 else "")
    if isinstance(value, list | tuple | set):
        values = list(value)
        shown = ", ".join(_plain(v, max_items) for v in values[:max_items])
        extra = len(values) - max_items
        return shown + (f", +{extra} more" if extra > 0 else "")
    text = str(value)
    return text if len(text) <= 500 else text[:499] + "…"


def evidence_items(evidence: Mapping[str, Any], catalog: Mapping[str, Any]) -> list[dict[str, str]]:
    """The evidence fields a developer may see, labelled per ``catalog.toml``."""
    config = catalog.get("evidence", {})
    hidden = set(config.get("hidden", []))
    labels: Mapping[str, str] = config.get("labels", {})
    max_items = int(config.get("max_items", 12))
    items = []
    for key, value in evidence.items():
        if key in hidden or value in (None, "", [], {}):
            continue
        label = labels.get(key) or key.replace("_", " ").capitalize()
        items.append({"label": label, "value": _plain(value, max_items)})
    return items


def _actions(
    actions: Iterable[Mapping[str, Any]], apps: Iterable[App], developers: Iterable[Developer]
) -> list[dict[str, str]]:
    names = {("app", a.id): one_line(a.name) for a in apps}
    names.update({("account", d.id): one_line(d.handle) for d in developers})
    return [
        {
            "kind": str(action["kind"]),
            "target_type": str(action["target_type"]),
            "target_id": str(action["target_id"]),
            "target_name": names.get(
                (str(action["target_type"]), str(action["target_id"])), str(action["target_id"])
            ),
        }
        for action in actions
    ]


def _case_context(
    *,
    case: Case,
    template: EmailTemplate | str,
    now: datetime,
    extra: Mapping[str, Any] | None,
    settings: Settings,
    catalog: Mapping[str, Any],
) -> dict[str, Any]:
    """The part of the context every developer of ``case`` shares (built once per e-mail)."""
    email = settings.email
    policy = dict(catalog["policies"][case.policy])
    policy["url"] = f"{email.policy_url}#{policy.get('anchor', case.policy)}"
    context: dict[str, Any] = {
        "case": {
            "id": case.id,
            "ref": case_ref(case.id, settings),
            "policy": case.policy,
            "reason": case.reason,
            "status": str(case.status),
        },
        "policy": policy,
        "evidence": evidence_items(case.evidence or {}, catalog),
        "sender": {"name": email.sender_name, "address": email.sender},
        "links": {"policy": email.policy_url, "appeal": email.appeal_url},
        "days": {
            "outreach_response": settings.deadlines.outreach_response_days,
            "change": settings.deadlines.change_days,
            "extension": settings.deadlines.extension_days,
            "appeal_window": settings.deadlines.appeal_window_days,
        },
        "tz": email.timezone,
        "now": now,
        "template": str(template),
    }
    for key, value in (extra or {}).items():
        if key == "actions":
            context["actions"] = _actions(value, case.apps, case.developers)
        elif key == "reason":
            context["enforcement_reason"] = value
        else:
            context[key] = value
    return context


def _for_developer(shared: Mapping[str, Any], case: Case, developer: Developer) -> dict[str, Any]:
    """``shared`` plus what differs per recipient: the developer and their own apps."""
    own_apps = [a for a in case.apps if a.developer_id == developer.id] or list(case.apps)
    return {
        **shared,
        "apps": [_app_data(a) for a in own_apps],
        "other_app_count": len(case.apps) - len(own_apps),
        "developer": {
            "id": developer.id,
            "handle": one_line(developer.handle),
            "email": developer.email,
        },
    }


def build_context(
    *,
    case: Case,
    developer: Developer,
    template: EmailTemplate | str,
    now: datetime,
    extra: Mapping[str, Any] | None,
    settings: Settings,
    catalog: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything a template may use, as plain data (no ORM object reaches a template).

    ``extra`` keys are passed through (``changes``, ``deadline``, ``old_deadline``,
    ``new_deadline``, ``decision_reason``); ``actions`` get their targets' names and
    ``reason`` becomes ``enforcement_reason``. A key a template needs but nobody supplied is
    an error at render time, never a blank.
    """
    shared = _case_context(
        case=case, template=template, now=now, extra=extra, settings=settings, catalog=catalog
    )
    return _for_developer(shared, case, developer)


def render_for(
    *,
    case: Case,
    developer: Developer,
    template: EmailTemplate | str,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> RenderedEmail:
    """Subject, text and HTML of ``template`` for one developer of ``case``."""
    settings = settings or get_settings()
    renderer = renderer_for(settings)
    context = build_context(
        case=case,
        developer=developer,
        template=template,
        now=now,
        extra=extra,
        settings=settings,
        catalog=renderer.catalog,
    )
    return renderer.render(template, context)


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
    settings = settings or get_settings()
    renderer = renderer_for(settings)
    shared = _case_context(
        case=case,
        template=template,
        now=now,
        extra=extra,
        settings=settings,
        catalog=renderer.catalog,
    )
    rows: list[dict[str, Any]] = []
    for developer in case.developers:
        key = idempotency_key(
            case_id=case.id, event_seq=event.seq, template=template, developer_id=developer.id
        )
        rendered = renderer.render(template, _for_developer(shared, case, developer))
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
    if not rows:
        return []
    if event.id is None:  # new in this unit of work: it can have no rows yet
        messages = [OutboxMessage(event=event, **row) for row in rows]
        session.add_all(messages)
        return messages
    return _store(session, [row | {"event_id": event.id} for row in rows])


def _insert_new(session: Session) -> ReturningInsert[OutboxMessage]:
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING`` outbox rows."""
    dialect = session.get_bind().dialect.name
    key = [OutboxMessage.idempotency_key]
    if dialect == "postgresql":
        pg = postgresql.insert(OutboxMessage).on_conflict_do_nothing(index_elements=key)
        return pg.returning(OutboxMessage)
    if dialect == "sqlite":
        lite = sqlite.insert(OutboxMessage).on_conflict_do_nothing(index_elements=key)
        return lite.returning(OutboxMessage)
    raise NotImplementedError(f"the outbox runs on PostgreSQL or SQLite, not {dialect}")


def _store(session: Session, rows: list[dict[str, Any]]) -> list[OutboxMessage]:
    """Insert ``rows`` unless their key is stored; the stored rows, in the order of ``rows``."""
    stored = {m.idempotency_key: m for m in session.scalars(_insert_new(session), rows)}
    missing = [r["idempotency_key"] for r in rows if r["idempotency_key"] not in stored]
    if missing:
        query = select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(missing))
        stored.update((m.idempotency_key, m) for m in session.scalars(query))
    return [stored[r["idempotency_key"]] for r in rows]


__all__ = [
    "build_context",
    "case_ref",
    "enqueue",
    "evidence_items",
    "idempotency_key",
    "render_for",
    "renderer_for",
]
