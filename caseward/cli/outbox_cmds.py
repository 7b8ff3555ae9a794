"""``caseward outbox ...`` and ``caseward email preview``: see, send and settle developer e-mail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.text import Text
from sqlalchemy import select

from cases.core.db import get_engine, unit_of_work
from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.errors import InvalidInput, NotFound
from cases.core.models import OutboxMessage
from cases.email import delivery, recovery, review
from cases.email.preview import preview_email
from caseward.cli.common import MAX_INT, STATE, emit, fmt_time, out, settings, table
from caseward.cli.selection import (
    AllFilter,
    CaseFilter,
    DryRun,
    SinceFilter,
    TemplateFilter,
    selection,
    settle_selected,
)

outbox_app = typer.Typer(help="Developer e-mail waiting, sent, failed or uncertain.")
email_app = typer.Typer(help="Developer e-mail templates.")

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
MessageId = Annotated[
    int, typer.Argument(help="The outbox message id.", show_default=False, min=1, max=MAX_INT)
]
HtmlFile = Annotated[
    Path | None, typer.Option("--html", help="Also write the HTML part to this file.")
]


def _row(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "case_id": message.case_id,
        "event_id": message.event_id,
        "template": message.template,
        "developer_id": message.developer_id,
        "to": message.to_address,
        "subject": message.subject,
        "status": str(message.status),
        "attempts": message.attempts,
        "created_at": message.created_at,
        "next_attempt_at": message.next_attempt_at,
        "claimed_at": message.claimed_at,
        "claimed_by": message.claimed_by,
        "sent_at": message.sent_at,
        "message_id": message.message_id,
        "provider_message_id": message.provider_message_id,
        "last_error": message.last_error,
        "delivered_at": message.delivered_at,
        "bounced_at": message.bounced_at,
    }


def _delivery(row: dict[str, Any]) -> str:
    """What SendGrid's Event Webhook reported, where it did (docs/email.md)."""
    if row["bounced_at"]:
        return f"bounced {fmt_time(row['bounced_at'])}"
    if row["delivered_at"]:
        return f"delivered {fmt_time(row['delivered_at'])}"
    return ""


def _write_html(path: Path | None, html: str) -> None:
    if path is not None:
        path.write_text(html, encoding="utf-8")
        out.print(Text(f"HTML written to {path}"))


@outbox_app.command("list")
def list_messages(
    status: Annotated[
        OutboxStatus | None, typer.Option("--status", help="Only messages in this status.")
    ] = None,
    case_id: CaseFilter = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_INT, help="At most this many.")
    ] = 200,
    as_json: Json = False,
) -> None:
    """Outbox messages, newest first; with SendGrid's Event Webhook, whether each was
    delivered or bounced."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if case_id is not None:
        query = query.where(OutboxMessage.case_id == case_id)
    with unit_of_work() as session:
        rows = [_row(m) for m in session.scalars(query)]
    emit(
        rows,
        as_json,
        lambda: table(
            f"{len(rows)} message(s)",
            [
                "id",
                "case",
                "template",
                "to",
                "status",
                "tries",
                "next try",
                "sent",
                "delivery",
                "error",
            ],
            [
                [
                    r["id"],
                    r["case_id"],
                    r["template"],
                    r["to"],
                    r["status"],
                    r["attempts"],
                    fmt_time(r["next_attempt_at"]) if r["status"] == "pending" else "",
                    fmt_time(r["sent_at"]) if r["sent_at"] else "",
                    _delivery(r),
                    (r["last_error"] or "")[:60],
                ]
                for r in rows
            ],
        ),
    )


@outbox_app.command("show")
def show(message_id: MessageId, html: HtmlFile = None, as_json: Json = False) -> None:
    """One stored e-mail: headers and text part (``--html FILE`` writes the HTML part)."""
    with unit_of_work() as session:
        message = session.get(OutboxMessage, message_id)
        if message is None:
            raise NotFound(f"no outbox message {message_id}")
        row = _row(message) | {"text": message.text_body}
        html_body = message.html_body
    _write_html(html, html_body)
    emit(
        row,
        as_json,
        lambda: Text(
            f"To: {row['to']}\nSubject: {row['subject']}\nStatus: {row['status']}\n\n" + row["text"]
        ),
    )


@outbox_app.command("send")
def send(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, max=MAX_INT, help="Send at most this many.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Deliver the e-mails due now through the configured backend. An outage (the provider
    refuses our key or sender, or cannot be reached) stops the run with exit 1 and changes
    no e-mail."""
    report = delivery.deliver_pending(get_engine(), now=STATE.now(), limit=limit)
    if report.stopped and not as_json:
        raise delivery.DeliveryStopped(report)
    emit(
        report.as_dict(),
        as_json,
        lambda: Text(
            f"claimed {report.claimed}: sent {report.sent}, retrying {report.retried}, "
            f"failed {report.failed}; {report.uncertain} newly uncertain"
            + "".join(f"\n  {e}" for e in report.errors)
        ),
    )
    if report.stopped:
        raise delivery.DeliveryStopped(report)


@outbox_app.command("resolve")
def resolve_cmd(
    message_id: Annotated[
        int | None,
        typer.Argument(
            help="The outbox message id (or select with filters).",
            show_default=False,
            min=1,
            max=MAX_INT,
        ),
    ] = None,
    sent: Annotated[bool, typer.Option("--sent", help="The provider did accept it.")] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send it again (same Message-ID).")
    ] = False,
    status: Annotated[
        OutboxStatus | None, typer.Option("--status", help="Only uncertain or only failed.")
    ] = None,
    template: TemplateFilter = None,
    case_id: CaseFilter = None,
    since: SinceFilter = None,
    select_all: AllFilter = False,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> int:
    """Settle an uncertain e-mail (or resend a failed one): a lead's decision. With filters
    instead of an id, settle every e-mail they select, each with its own timeline event."""
    if sent == resend:
        raise InvalidInput("give exactly one of --sent or --resend")
    decision: Literal["sent", "resend"] = "sent" if sent else "resend"
    chosen = selection(
        message_id,
        template=template,
        case_id=case_id,
        since=since,
        select_all=select_all,
        narrowed=status is not None,
    )
    actor, now = STATE.who(), STATE.now()
    if chosen is None:
        assert message_id is not None
        with unit_of_work() as session:
            message = review.resolve_delivery(
                session, outbox_id=message_id, decision=decision, actor=actor, now=now
            )
            row = _row(message)
        emit(row, as_json, lambda: Text(f"e-mail {row['id']} is now {row['status']}"))
        return 0
    return settle_selected(
        f"e-mail(s) marked {decision}",
        dry_run=dry_run,
        as_json=as_json,
        select=lambda s: recovery.resolvable_emails(
            s, decision=decision, selection=chosen, status=status
        ),
        act=lambda s, i: review.resolve_delivery(
            s, outbox_id=i, decision=decision, actor=actor, now=now
        ),
    )


@email_app.command("preview")
def preview_cmd(
    template: Annotated[EmailTemplate, typer.Argument(help="The template.", show_default=False)],
    case_id: Annotated[
        int, typer.Option("--case", help="The case id.", show_default=False, min=1, max=MAX_INT)
    ],
    developer: Annotated[
        str | None, typer.Option("--developer", help="Render for this developer of the case.")
    ] = None,
    html: HtmlFile = None,
    as_json: Json = False,
) -> None:
    """Render TEMPLATE for a case without storing or sending anything."""
    with unit_of_work() as session:
        to, rendered = preview_email(
            session,
            case_id=case_id,
            template=template,
            now=STATE.now(),
            settings=settings(),
            developer_id=developer,
        )
    _write_html(html, rendered.html)
    data = {"to": to, "subject": rendered.subject, "text": rendered.text, "html": rendered.html}
    emit(data, as_json, lambda: Text(f"To: {to}\nSubject: {rendered.subject}\n\n{rendered.text}"))


def register(app: typer.Typer) -> None:
    """Add ``outbox`` and ``email`` to the root app."""
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(email_app, name="email")
