"""The message as it leaves Caseward: stable Message-ID, validated addresses, safe headers."""

from __future__ import annotations

import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from email_validator import EmailNotValidError, validate_email

from cases.email.render import header_safe

# the custom argument every provider request carries and SendGrid's Event Webhook echoes in
# each event: our Message-ID (the file backend's ``Message-ID`` header), unique per e-mail
MESSAGE_ID_ARG = "caseward_message_id"
# RFC 5322 lines (CRLF, at most 998 characters): a subject stays on one line, unfolded.
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)


class InvalidAddress(ValueError):
    """An address that cannot be used in a header (malformed, reserved domain, CR/LF...)."""


class InvalidSender(InvalidAddress):
    """Our own configured From or Reply-To address is unusable: every e-mail would fail."""


def message_id_for(idempotency_key: str, sender: str) -> str:
    """A Message-ID derived only from the idempotency key: a resend carries the same id."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "caseward.local"
    return f"<{digest}.caseward@{domain}>"


_OPERATOR_ADDRESS = re.compile(r"[^@\s\x00-\x1f\x7f<>()\[\],;:\"]+@[A-Za-z0-9.-]+")


def checked_address(address: str, *, operator: bool = False) -> str:
    """The normalised form of ``address``, or :class:`InvalidAddress`.

    Developer addresses get full validation (syntax, reserved domains). ``operator`` addresses
    (our own From/Reply-To, from configuration) may use a local domain such as
    ``caseward.local`` but are still checked to be one plain ``local@domain`` token.
    """
    if operator:
        if not _OPERATOR_ADDRESS.fullmatch(address):
            raise InvalidSender(f"invalid sender address {address!r} (email.sender/reply_to)")
        return address
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid address {address!r}: {exc}") from exc


@dataclass(frozen=True)
class OutgoingEmail:
    """One stored outbox row as a backend sees it (no ORM object crosses into a backend)."""

    outbox_id: int
    case_id: int
    template: str
    idempotency_key: str
    message_id: str
    to_address: str
    subject: str
    text_body: str
    html_body: str
    sender: str
    sender_name: str
    reply_to: str | None = None
    categories: tuple[str, ...] = field(default=())


def build_mime(email: OutgoingEmail, *, date: datetime) -> EmailMessage:
    """An RFC 5322 multipart/alternative message (text first, HTML preferred).

    Every header value passes :func:`header_safe` and addresses are validated, so
    developer-controlled text cannot add or fold a header; the stdlib policy also refuses
    any CR/LF that would slip through.
    """
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = Address(
        header_safe(email.sender_name), addr_spec=checked_address(email.sender, operator=True)
    )
    message["To"] = Address(addr_spec=checked_address(email.to_address))
    if email.reply_to:
        message["Reply-To"] = Address(addr_spec=checked_address(email.reply_to, operator=True))
    message["Subject"] = header_safe(email.subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = email.message_id
    message["X-Caseward-Case"] = str(email.case_id)
    message["X-Caseward-Template"] = header_safe(email.template)
    message.set_content(email.text_body, subtype="plain", cte="quoted-printable")
    message.add_alternative(email.html_body, subtype="html", cte="quoted-printable")
    return message
