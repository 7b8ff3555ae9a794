"""A backend for development: prints each e-mail, as the MIME message it would be, to stdout."""

from __future__ import annotations

import email.policy
import sys
import threading
from datetime import datetime
from typing import TextIO

from cases.email.message import OutgoingEmail
from cases.email.senders.base import SendResult, mime_or_raise


class ConsoleSender:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, email_: OutgoingEmail, *, now: datetime) -> SendResult:
        message = mime_or_raise(email_, date=now)
        text = message.as_string(policy=email.policy.default)
        stream = self.stream or sys.stdout
        with self._lock:  # one message at a time, never interleaved
            stream.write(f"{text}\n{'-' * 72}\n")
            stream.flush()
        return SendResult(provider_message_id=email_.message_id)
