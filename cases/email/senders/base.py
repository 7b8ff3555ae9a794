"""The EmailSender protocol every backend implements, and how a send can fail.

A backend sends one :class:`~cases.email.message.OutgoingEmail` and either returns a
:class:`SendResult` (the provider accepted it) or raises one of three errors, which decide
what the outbox does next:

* :class:`TransientDeliveryError`: try again later (429, 5xx, timeouts, connection errors);
* :class:`PermanentDeliveryError`: this message can never be sent as it is (400, invalid
  address): it fails and shows on the case;
* :class:`ProviderOutage`: no message is at fault, so the run stops and its claims go back
  to pending untouched (no status, attempt or error changes): :class:`ProviderConfigError`
  when *our* side is wrong (401/403, a missing API key, a sender the provider or our own
  check rejects), :class:`ProviderUnavailable` when the provider (or the mail folder)
  cannot be reached at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from cases.core.settings import Settings
from cases.email.message import InvalidAddress, InvalidSender, OutgoingEmail, build_mime


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted a message."""

    provider_message_id: str | None = None


class DeliveryError(Exception):
    """A send that did not succeed; ``reason`` is safe to store and show (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientDeliveryError(DeliveryError):
    """Worth retrying later; ``retry_after`` is the provider's hint in seconds, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """This message cannot be delivered as it is."""


class ProviderOutage(DeliveryError):
    """Not about one message: the run stops and changes no e-mail."""


class ProviderConfigError(ProviderOutage):
    """The provider refuses us (credentials, permissions, our sender); no message is at fault."""


class ProviderUnavailable(ProviderOutage):
    """The provider cannot be reached (connection refused, unknown host, TLS), or the mail
    folder cannot be written: nothing was handed over."""


class EmailSender(Protocol):
    """Sends one e-mail. Implementations must be safe to call from several threads."""

    name: str

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        """Hand ``email`` to the provider; raise a :class:`DeliveryError` on failure."""
        ...


def mime_or_raise(email: OutgoingEmail, *, date: datetime) -> EmailMessage:
    """The MIME message of ``email`` for the local backends; an unusable sender stops the
    run, an unusable recipient fails only this message."""
    try:
        return build_mime(email, date=date)
    except InvalidSender as exc:
        raise ProviderConfigError(str(exc)) from exc
    except (InvalidAddress, ValueError) as exc:
        raise PermanentDeliveryError(str(exc)) from exc


def make_sender(settings: Settings) -> EmailSender:
    """The backend chosen by ``settings.email.backend``."""
    backend = settings.email.backend
    if backend == "file":
        from cases.email.senders.file import FileSender

        return FileSender(settings.email.mail_dir)
    if backend == "console":
        from cases.email.senders.console import ConsoleSender

        return ConsoleSender()
    from cases.email.senders.sendgrid import SendGridSender

    return SendGridSender.from_settings(settings)
