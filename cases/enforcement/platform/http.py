"""Enforcement through the platform's admin API (JSON over HTTP, bearer token).

Each call carries the action's idempotency key (``Idempotency-Key``), so a retry after a
timeout or a crash never applies an action twice on the platform side. 5xx and transport
errors are retried with exponential backoff; 4xx fail at once.

Endpoints: ``POST {api_url}/actions`` with ``{"action", "target_type", "target_id"}``,
answered with ``{"prior_status": ...}``; ``POST {api_url}/actions/reverse`` with the same
body plus ``"restore_status"``, the status the actions still in force imply.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy.orm import Session

from cases.core.errors import PlatformError, PlatformRefused, PlatformUnavailable
from cases.core.settings import PlatformSettings
from cases.enforcement.platform.base import ActionSpec


class HttpAdapter:
    def __init__(
        self,
        *,
        api_url: str,
        token: str | None,
        timeout: float,
        max_attempts: int,
        backoff_seconds: float = 0.5,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = client or httpx.Client(base_url=api_url, headers=headers, timeout=timeout)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds

    @classmethod
    def from_settings(
        cls, settings: PlatformSettings, *, session: Session | None = None
    ) -> HttpAdapter:
        if not settings.api_url:
            raise PlatformError("platform.adapter is 'http' but platform.api_url is not set")
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(
            api_url=settings.api_url,
            token=token,
            timeout=settings.timeout_seconds,
            max_attempts=settings.max_attempts,
            backoff_seconds=settings.backoff_seconds,
        )

    def _post(self, path: str, action: ActionSpec, body: dict[str, Any]) -> dict[str, Any]:
        payload = {
            "action": action.kind.value,
            "target_type": action.target_type.value,
            "target_id": action.target_id,
        } | body
        headers = {"Idempotency-Key": action.idempotency_key + path.replace("/", "-")}
        last_error = ""
        for attempt in range(self.max_attempts):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self.client.post(path, json=payload, headers=headers)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last_error = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise PlatformRefused(
                    f"platform refused {action.kind.value} on {action.target_type} "
                    f"{action.target_id}: HTTP {response.status_code} {response.text[:200]}"
                )
            result: dict[str, Any] = response.json() if response.content else {}
            return result
        raise PlatformUnavailable(
            f"platform unavailable for {action.kind.value} on {action.target_type} "
            f"{action.target_id} after {self.max_attempts} attempts ({last_error})"
        )

    def apply(self, action: ActionSpec) -> str:
        return str(self._post("/actions", action, {}).get("prior_status", "active"))

    def reverse(self, action: ActionSpec, restore_status: str) -> None:
        self._post("/actions/reverse", action, {"restore_status": restore_status})
