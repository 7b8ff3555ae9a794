"""The EmailSender protocol every backend implements, and how a send can fail.

A backend sends one :class:`~cases.email.message.OutgoingEmail` and either returns a
:class:`SendResult` (the provider accepted it) or raises one of three errors, which decide
what the outbox does next:

* :class:`TransientDeliveryError`: try again later (429, 5xx, timeouts, connection errors);
* :class:`PermanentDeliveryError`: this message can never be sent as it is (400, invalid
  address): it fails and shows on the case;
* :class:`ProviderConfigError`: *our* side is wrong (401/403: bad API key); no message is
  at fault, so the batch stops and its claims go back to pending untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cases.core.settings import Settings
from cases.email.message import OutgoingEmail


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


class ProviderConfigError(DeliveryError):
    """The provider refuses us (credentials, permissions); no message is at fault."""


class EmailSender(Protocol):
    """Sends one e-mail. Implementations must be safe to call from several threads."""

    name: str

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        """Hand ``email`` to the provider; raise a :class:`DeliveryError` on failure."""
        ...


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
