"""The portal's defences: response headers, CSRF tokens, rate limits, a redacted access log.

* Every response carries a strict Content-Security-Policy (nothing but this origin: no
  script, no external asset), refuses framing, sends no Referer (the token is in the URL)
  and may not be cached.
* Forms carry a CSRF token: an HMAC, under the portal key, of a random nonce kept in a
  ``SameSite=Strict`` cookie and of the link's token (the signed double-submit pattern).
  A POST without the cookie or with another token changes nothing.
* Requests are counted per client address and per link in fixed one-minute windows, in
  this process (several ``caseward web`` processes each count their own).
* The access log names the route and the case, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("caseward.web")

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
CSRF_COOKIE = "caseward_csrf"
CSRF_PURPOSE = b"caseward-portal-csrf\x00"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")
_TOKEN_IN_PATH = re.compile(r"^/case/[^/]+")


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def valid_nonce(value: str | None) -> bool:
    return value is not None and _NONCE.fullmatch(value) is not None


def csrf_token(key: bytes, nonce: str, link_token: str) -> str:
    """The token a form of the page of ``link_token`` carries, for the cookie's ``nonce``."""
    message = CSRF_PURPOSE + nonce.encode() + b"\x00" + link_token.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_valid(keys: list[bytes], nonce: str | None, link_token: str, submitted: str) -> bool:
    """Whether ``submitted`` is the token of this page for this cookie (under any key)."""
    if not valid_nonce(nonce) or not submitted:
        return False
    assert nonce is not None
    return any(
        hmac.compare_digest(submitted.encode(), csrf_token(key, nonce, link_token).encode())
        for key in keys
    )


class RateLimiter:
    """At most ``limit`` requests per key in each ``window`` seconds (fixed windows, on
    the process's monotonic clock: an operational limit, not business time)."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a request of ``key``; False once it has used up its window."""
        slot = int(self.clock() // self.window)
        with self._lock:
            if len(self._counts) > 50_000:  # forget the keys of windows gone by
                self._counts = {k: v for k, v in self._counts.items() if v[0] == slot}
            seen_slot, count = self._counts.get(key, (slot, 0))
            count = count + 1 if seen_slot == slot else 1
            self._counts[key] = (slot, count)
            return count <= self.limit


def link_key(token: str) -> str:
    """A link as the rate limiter keeps it: a digest, not the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def redacted_path(path: str) -> str:
    """``/case/<token>/appeal`` as a log may show it: ``/case/…/appeal``."""
    return _TOKEN_IN_PATH.sub("/case/…", path)


async def secure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: the headers on every response, and one access-log line without token."""
    started = time.perf_counter()
    response = await call_next(request)
    for name, value in HEADERS.items():
        response.headers[name] = value
    case_id = getattr(request.state, "case_id", None)
    log.info(
        "%s %s %s%s %.0fms",
        request.method,
        redacted_path(request.url.path),
        response.status_code,
        f" case {case_id}" if case_id is not None else "",
        (time.perf_counter() - started) * 1000,
    )
    return response
