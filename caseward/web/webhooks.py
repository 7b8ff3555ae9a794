"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook.

The request is checked before anything is read into the database, with the official
library's :class:`~sendgrid.helpers.eventwebhook.EventWebhook` and the configured key
(``email.sendgrid_webhook_public_key``):

* 404 while no key is configured, as if the route did not exist;
* 401, changing nothing, for a missing or bad signature, or a signature timestamp more than
  ten minutes from the *real* clock (a replayed request; simulated time plays no part);
* 413 for a body over :data:`MAX_BODY`; 400 for a signed body that is not a JSON array;
* 200 with the batch's counts once :func:`cases.email.events.ingest` has applied it in one
  transaction; an error there rolls the whole batch back (500), and SendGrid sends it again.

The handler takes the settings and the sessionmaker from ``request.app.state``.
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from cases.core.clock import utcnow
from cases.core.errors import InvalidInput
from cases.core.settings import Settings
from cases.email import events

log = logging.getLogger(__name__)
router = APIRouter()

MAX_BODY = 8 * 1024 * 1024  # SendGrid batches stay far below this
FRESHNESS_SECONDS = 600  # a signature older (or further ahead) than this is refused


@lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    return EventWebhook(public_key)


def signature_problem(
    public_key: str, body: bytes, signature: str | None, timestamp: str | None, *, now: float
) -> str | None:
    """Why the request is not SendGrid's signed, fresh request, or None if it is.
    ``now`` is the real clock (seconds since the epoch)."""
    if not signature or not timestamp:
        return "the signature headers are missing"
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return "the signature timestamp is not a Unix time"
    if abs(now - int(timestamp)) > FRESHNESS_SECONDS:
        return "the signature timestamp is more than ten minutes away from now"
    try:
        valid = _verifier(public_key).verify_signature(body.decode("utf-8"), signature, timestamp)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        valid = False
    return None if valid else "the signature does not match"


def _refused(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _body(request: Request) -> bytes | None:
    """The raw body, or None once it grows past :data:`MAX_BODY`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _apply(
    sessions: sessionmaker[Session],
    batch: list[events.ProviderEvent],
    report: events.IngestReport,
    settings: Settings,
) -> events.IngestReport:
    with sessions.begin() as session:
        return events.ingest(session, events=batch, now=settings.now or utcnow(), report=report)


@router.post("/webhooks/sendgrid", include_in_schema=False)
async def sendgrid_events(request: Request) -> JSONResponse:
    """Verify and apply one batch of SendGrid events."""
    settings: Settings = request.app.state.settings
    public_key = settings.email.sendgrid_webhook_public_key
    if public_key is None:
        return _refused(404, "Not Found")
    body = await _body(request)
    if body is None:
        return _refused(413, f"the body is larger than {MAX_BODY} bytes")
    problem = signature_problem(
        public_key,
        body,
        request.headers.get(EventWebhookHeader.SIGNATURE),
        request.headers.get(EventWebhookHeader.TIMESTAMP),
        now=time.time(),
    )
    if problem is not None:
        log.warning("SendGrid webhook refused: %s", problem)
        return _refused(401, "the request is not signed by SendGrid, or is too old")
    try:
        payload: Any = json.loads(body)
        batch, report = events.parse_batch(payload)
    except (ValueError, InvalidInput) as exc:
        return _refused(400, str(exc) if isinstance(exc, InvalidInput) else "the body is not JSON")
    report = await run_in_threadpool(_apply, request.app.state.sessions, batch, report, settings)
    log.info("SendGrid webhook: %s", report.as_dict())
    return JSONResponse(report.as_dict())
