"""The default backend: each e-mail becomes an RFC 5322 ``.eml`` file in the mail folder."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from cases.email.message import OutgoingEmail
from cases.email.senders.base import ProviderUnavailable, SendResult, mime_or_raise


class FileSender:
    """Writes ``<mail_dir>/case-<case>-<outbox id>-<template>.eml``, openable in any mail
    client. The name depends only on the row, so writing the same e-mail twice leaves one file.
    """

    name = "file"

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = Path(mail_dir)

    def path_for(self, email: OutgoingEmail) -> Path:
        return self.mail_dir / f"case-{email.case_id}-{email.outbox_id:06d}-{email.template}.eml"

    def send(self, email: OutgoingEmail, *, now: datetime) -> SendResult:
        data = mime_or_raise(email, date=now).as_bytes()
        target = self.path_for(email)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".eml")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)  # atomic: a reader never sees half a message
        except OSError as exc:  # the folder, not the message: the run stops
            raise ProviderUnavailable(f"cannot write {target}: {exc.strerror}") from exc
        return SendResult(provider_message_id=target.name)
