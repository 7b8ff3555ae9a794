"""The Transparency Database's API, as Caseward uses it: JSON over HTTPS, a bearer token.

``POST {api_url}/statements`` creates up to 100 statements at once (all or none: a 422
lists each refused statement as ``statement_<index>``, or the puids that exist already as
``existing_puids``); ``GET {api_url}/statement/existing-puid/{puid}`` answers 302 with the
stored statement, or 404. This module only speaks HTTP; what an answer means for a
submission is :mod:`cases.statements.submission`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from cases.core.errors import CasewardError
from cases.core.settings import StatementSettings


class StatementsConfigError(CasewardError):
    """The API is not configured, or refuses our credentials: nothing can be sent."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: its status, its JSON body (empty if none) and any Retry-After."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None


def _answer(response: httpx.Response) -> Answer:
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = {"message": response.text[:500]}
    retry_after: float | None = None
    header = response.headers.get("Retry-After")
    if header is not None:
        try:
            retry_after = max(float(header), 0.0)
        except ValueError:
            retry_after = None  # an HTTP date: fall back to our own backoff
    return Answer(response.status_code, body if isinstance(body, dict) else {}, retry_after)


class TransparencyClient:
    """A connection to the Transparency Database API (keep-alive, one per run)."""

    def __init__(
        self,
        *,
        api_url: str,
        token: str,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=api_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=timeout,
            follow_redirects=False,  # the existing-puid endpoint answers 302 Found
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: StatementSettings) -> TransparencyClient:
        if not settings.api_url:
            raise StatementsConfigError(
                "no Transparency Database endpoint: set CASEWARD_STATEMENTS__API_URL "
                "(e.g. https://transparency.dsa.ec.europa.eu/api/v1)"
            )
        if settings.api_token is None:
            raise StatementsConfigError(
                "no Transparency Database token: set CASEWARD_STATEMENTS__API_TOKEN"
            )
        return cls(
            api_url=settings.api_url,
            token=settings.api_token.get_secret_value(),
            timeout=settings.timeout_seconds,
        )

    def create(self, statements: list[dict[str, Any]]) -> Answer:
        """``POST statements``; transport errors (timeouts, refused connections) propagate."""
        return _answer(self.client.post("statements", json={"statements": statements}))

    def existing(self, puid: str) -> Answer:
        """``GET statement/existing-puid/{puid}``: 302 (or 200) with the statement, or 404."""
        return _answer(self.client.get(f"statement/existing-puid/{quote(puid, safe='')}"))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> TransparencyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
