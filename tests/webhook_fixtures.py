"""SendGrid's side of the Event Webhook, for tests and the benchmark: a key pair of its own,
events as SendGrid words them, requests signed as SendGrid signs them, and a bare app
serving the webhook router (the portal's app is not needed to test it)."""

from __future__ import annotations

import base64
import itertools
import json
import time
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import Engine

from cases.core.db import session_factory
from cases.core.settings import Settings
from caseward.web import webhooks

_event_ids = itertools.count(1)


class SendGridSigner:
    """An ECDSA P-256 key pair; :attr:`public_key` is what SendGrid shows (base64 DER)."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, *, at: float | None = None) -> dict[str, str]:
        """The headers SendGrid sends: a signature over the timestamp and the raw body."""
        timestamp = str(int(time.time() if at is None else at))
        signature = self._key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }


def sg_event(kind: str, message_id: str | None, at: datetime, **extra: Any) -> dict[str, Any]:
    """One event as SendGrid posts it, with our custom argument (if ``message_id``)."""
    event: dict[str, Any] = {
        "email": "dev@example.org",
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": f"sg-event-{next(_event_ids)}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        **extra,
    }
    if message_id is not None:
        event["caseward_message_id"] = message_id
    return event


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()


def webhook_app(engine: Engine, settings: Settings) -> FastAPI:
    """The webhook router on a bare app, with the two state attributes it reads."""
    app = FastAPI()
    app.include_router(webhooks.router)
    app.state.settings = settings
    app.state.sessions = session_factory(engine)
    return app
