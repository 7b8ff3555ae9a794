"""A backend for development: prints each e-mail, as the MIME message it would be, to stdout."""

from __future__ import annotations

import email.policy
import sys
import threading
from datetime import datetime
from typing import TextIO

from cases.email.message import InvalidAddress, OutgoingEmail, build_mime
from cases.email.senders.base import PermanentDeliveryError, SendResult


class ConsoleSender:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, email_: OutgoingEmail, *, now: datetime) -> SendResult:
        try:
            message = build_mime(email_, date=now)
        except (InvalidAddress, ValueError) as exc:
            raise PermanentDeliveryError(str(exc)) from exc
        text = message.as_string(policy=email.policy.default)
        stream = self.stream or sys.stdout
        with self._lock:  # one message at a time, never interleaved
            stream.write(f"{text}\n{'-' * 72}\n")
            stream.flush()
        return SendResult(provider_message_id=email_.message_id)
