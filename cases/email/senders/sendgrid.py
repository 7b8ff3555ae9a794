"""SendGrid delivery through the official client (``sendgrid`` / ``python_http_client``).

The request carries our stable Message-ID header, and in ``custom_args`` that Message-ID
(``caseward_message_id``, how :mod:`cases.email.events` maps the Event Webhook's events
back to the e-mail), the case id, outbox id and idempotency key (for the activity feed), one
category per template, and sandbox mode when configured. The API key never reaches a log:
the client logs its request headers at DEBUG, so a filter masks the key in its records.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Category,
    CustomArg,
    From,
    Header,
    HtmlContent,
    Mail,
    MailSettings,
    PlainTextContent,
    ReplyTo,
    SandBoxMode,
    Subject,
    To,
)

from cases.core.settings import Settings
from cases.email.message import (
    MESSAGE_ID_ARG,
    InvalidAddress,
    InvalidSender,
    OutgoingEmail,
    checked_address,
)
from cases.email.render import header_safe
from cases.email.senders.base import (
    PermanentDeliveryError,
    ProviderConfigError,
    ProviderUnavailable,
    SendResult,
    TransientDeliveryError,
)
from cases.email.senders.keepalive import KeepAliveClient

CLIENT_LOGGER = "python_http_client.client"
TRANSIENT_STATUSES = frozenset({408, 425, 429})
# a 400 about these fields refuses our configured sender, not one message
SENDER_FIELDS = frozenset({"from", "from.email", "from.name", "reply_to", "reply_to.email"})
# connection errors that mean the request never left: the provider cannot be reached
UNREACHABLE = (ConnectionRefusedError, socket.gaierror, ssl.SSLError)


class RedactSecret(logging.Filter):
    """Masks one secret in every record of the logger it is attached to."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            message = record.getMessage()
            if self.secret in message:
                record.msg, record.args = message.replace(self.secret, "***"), ()
        return True


def _guard_client_logs(api_key: str) -> None:
    logger = logging.getLogger(CLIENT_LOGGER)
    if not any(isinstance(f, RedactSecret) and f.secret == api_key for f in logger.filters):
        logger.addFilter(RedactSecret(api_key))


def _error_summary(body: Any) -> str:
    """SendGrid's error messages, short; never the request (which holds the whole e-mail)."""
    try:
        data = json.loads(body.decode() if isinstance(body, bytes) else str(body))
        messages = [str(e.get("message", "")) for e in data.get("errors", [])]
        text = "; ".join(m for m in messages if m)
    except (ValueError, AttributeError, TypeError):
        text = ""
    return header_safe(text, limit=300) or "no details"


def _error_fields(body: Any) -> set[str]:
    """The request fields SendGrid's errors name (``from.email``...)."""
    try:
        data = json.loads(body.decode() if isinstance(body, bytes) else str(body))
        return {str(e.get("field")) for e in data.get("errors", []) if e.get("field")}
    except (ValueError, AttributeError, TypeError):
        return set()


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class SendGridSender:
    """POSTs ``/v3/mail/send``. Safe from several threads: the API client is not, so each
    send checks one out of a pool (as many clients as sends ever ran at once).

    With ``keep_alive`` (the default) each client reuses one connection
    (:mod:`cases.email.senders.keepalive`); without it, the library opens one per request.
    :meth:`close` closes the connections; a later send opens new ones.
    """

    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        sandbox: bool = False,
        timeout: float = 10.0,
        keep_alive: bool = True,
    ) -> None:
        if not api_key:
            raise ProviderConfigError("SENDGRID_API_KEY is not set")
        self._api_key = api_key
        self.host = host.rstrip("/")
        self.sandbox = sandbox
        self.timeout = timeout
        self.keep_alive = keep_alive
        self._lock = threading.Lock()
        self._clients: list[SendGridAPIClient] = []  # at most one per concurrent send
        self._idle: list[SendGridAPIClient] = []
        _guard_client_logs(api_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridSender:
        key = settings.sendgrid_api_key.get_secret_value() if settings.sendgrid_api_key else ""
        return cls(
            api_key=key,
            host=settings.email.sendgrid_host,
            sandbox=settings.email.sendgrid_sandbox,
            timeout=settings.email.timeout_seconds,
        )

    def __repr__(self) -> str:  # never show the key
        return f"SendGridSender(host={self.host!r}, sandbox={self.sandbox})"

    def _new_client(self) -> SendGridAPIClient:
        client = SendGridAPIClient(api_key=self._api_key, host=self.host)
        if self.keep_alive:
            client.client = KeepAliveClient.replacing(client.client, timeout=self.timeout)
        else:
            client.client.timeout = self.timeout  # the library has no timeout by default
        with self._lock:
            self._clients.append(client)
        return client

    @contextmanager
    def _checkout(self) -> Iterator[SendGridAPIClient]:
        """An idle client (and its open connection) for one request, or a new one."""
        with self._lock:
            client = self._idle.pop() if self._idle else None
        client = client or self._new_client()
        try:
            yield client
        finally:
            with self._lock:
                self._idle.append(client)

    @property
    def connections_opened(self) -> int:
        """Connections the keep-alive clients have opened so far (0 without keep-alive)."""
        with self._lock:
            transports = [c.client for c in self._clients]
        return sum(t.connection.connections_opened for t in transports if self.keep_alive)

    def close(self) -> None:
        """Close the open connections; the next send opens a new one."""
        with self._lock:
            transports = [c.client for c in self._clients]
        for transport in transports:
            if isinstance(transport, KeepAliveClient):
                transport.connection.close()

    def payload(self, email: OutgoingEmail) -> dict[str, Any]:
        """The JSON body of the request for ``email``."""
        mail = Mail(
            from_email=From(
                checked_address(email.sender, operator=True), header_safe(email.sender_name)
            ),
            to_emails=To(checked_address(email.to_address)),
            subject=Subject(header_safe(email.subject)),
            plain_text_content=PlainTextContent(email.text_body),
            html_content=HtmlContent(email.html_body),
        )
        if email.reply_to:
            mail.reply_to = ReplyTo(checked_address(email.reply_to, operator=True))
        mail.header = Header("Message-ID", email.message_id)
        mail.custom_arg = [
            CustomArg(MESSAGE_ID_ARG, email.message_id),
            CustomArg("case_id", str(email.case_id)),
            CustomArg("outbox_id", str(email.outbox_id)),
            CustomArg("idempotency_key", email.idempotency_key),
        ]
        mail.category = [Category(c) for c in (email.categories or (email.template,))]
        if self.sandbox:
            mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
        body: dict[str, Any] = mail.get()
        return body

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        try:
            body = self.payload(email)
        except InvalidSender as exc:
            raise ProviderConfigError(str(exc)) from exc
        except InvalidAddress as exc:
            raise PermanentDeliveryError(str(exc)) from exc
        try:
            with self._checkout() as client:
                response = client.send(body)
        except HTTPError as exc:
            raise self._classify(exc) from None
        except TimeoutError as exc:
            raise TransientDeliveryError(f"SendGrid timed out after {self.timeout}s") from exc
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, UNREACHABLE):  # nothing was sent: stop the run
                raise ProviderUnavailable(f"SendGrid unreachable: {reason}") from exc
            raise TransientDeliveryError(f"SendGrid connection failed: {reason}") from exc
        headers = response.headers
        message_id = headers.get("X-Message-Id") if headers is not None else None
        return SendResult(provider_message_id=message_id)

    def _classify(self, exc: HTTPError) -> Exception:
        status = int(getattr(exc, "status_code", 0) or 0)
        body = getattr(exc, "body", b"")
        detail = f"SendGrid {status}: {_error_summary(body)}"
        if status in (401, 403) or (status == 400 and _error_fields(body) & SENDER_FIELDS):
            return ProviderConfigError(detail)
        if status in TRANSIENT_STATUSES or status >= 500:
            return TransientDeliveryError(detail, _retry_after(getattr(exc, "headers", None)))
        return PermanentDeliveryError(detail)
