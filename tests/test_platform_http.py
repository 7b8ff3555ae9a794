"""HttpAdapter against a local fake platform: headers, retries, and no action applied twice.

The fake platform is a real HTTP server on 127.0.0.1 that honours ``Idempotency-Key``
the way the admin API contract requires: a repeated key returns the first answer and
changes nothing. Each test can script the answers of the next requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import ActionKind, ActionStatus, CaseStatus, TargetType
from cases.core.errors import PlatformError
from cases.core.models import PlatformAction
from cases.core.settings import get_settings
from cases.enforcement.platform import get_adapter
from cases.enforcement.platform.base import ActionSpec
from cases.enforcement.platform.http import HttpAdapter
from cases.lifecycle import sweeper
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import TIMES

SPEC = ActionSpec(ActionKind.REVOKE_TOKEN, TargetType.APP, "a-1", "case-1-revoke_token-app-a-1")


@dataclass
class FakePlatform:
    url: str = ""
    script: list[Any] = field(default_factory=list)  # next answers: "ok", "drop" or a status
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key
    effects: list[tuple[str, str, str]] = field(default_factory=list)  # what was really done
    status: dict[str, str] = field(default_factory=dict)  # target id -> status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
        with self.lock:
            self.requests.append((path, headers, body))
            answer = self.script.pop(0) if self.script else "ok"
            if answer != "ok":
                return answer
            key = headers.get("idempotency-key", "")
            if key not in self.answers:
                target = body["target_id"]
                prior = self.status.get(target, "active")
                self.status[target] = body.get("restore_status") or body["action"]
                self.effects.append((path, body["action"], target))
                self.answers[key] = {"prior_status": prior}
            return self.answers[key]

    def keys(self) -> list[str]:
        return [headers["idempotency-key"] for _, headers, _ in self.requests]


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = fake.handle(self.path, headers, body)
            if answer == "drop":  # the connection dies without an answer
                self.close_connection = True
                return
            code, payload = (200, answer) if isinstance(answer, dict) else (answer, {"e": 1})
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def adapter(url: str, *, token: str | None = "tok-123", attempts: int = 3) -> HttpAdapter:
    return HttpAdapter(
        api_url=url, token=token, timeout=5, max_attempts=attempts, backoff_seconds=0
    )


def test_apply_and_reverse_send_token_key_and_json_body(platform: FakePlatform) -> None:
    client = adapter(platform.url)
    assert client.apply(SPEC) == "active"
    client.reverse(SPEC, "restricted")
    (path1, headers1, body1), (path2, headers2, body2) = platform.requests
    assert (path1, path2) == ("/actions", "/actions/reverse")
    assert headers1["authorization"] == "Bearer tok-123"
    assert headers1["content-type"] == "application/json"
    assert headers1["idempotency-key"] == "case-1-revoke_token-app-a-1-actions"
    assert headers2["idempotency-key"] == "case-1-revoke_token-app-a-1-actions-reverse"
    assert body1 == {"action": "revoke_token", "target_type": "app", "target_id": "a-1"}
    assert body2 == body1 | {"restore_status": "restricted"}


def test_no_token_sends_no_authorization(platform: FakePlatform) -> None:
    adapter(platform.url, token=None).apply(SPEC)
    assert "authorization" not in platform.requests[0][1]


def test_5xx_is_retried_with_the_same_key_then_succeeds(platform: FakePlatform) -> None:
    platform.script = [503, 502]
    assert adapter(platform.url).apply(SPEC) == "active"
    assert len(platform.requests) == 3
    assert len(set(platform.keys())) == 1
    assert len(platform.effects) == 1


def test_5xx_every_time_fails_after_max_attempts(platform: FakePlatform) -> None:
    platform.script = [500, 500, 500]
    with pytest.raises(PlatformError, match=r"after 3 attempts .*HTTP 500"):
        adapter(platform.url).apply(SPEC)
    assert len(platform.requests) == 3 and platform.effects == []


@pytest.mark.parametrize("code", [400, 401, 404, 409, 422])
def test_4xx_fails_at_once(platform: FakePlatform, code: int) -> None:
    platform.script = [code]
    with pytest.raises(PlatformError, match=f"refused revoke_token on app a-1: HTTP {code}"):
        adapter(platform.url).apply(SPEC)
    assert len(platform.requests) == 1


def test_transport_failure_is_retried(platform: FakePlatform) -> None:
    platform.script = ["drop"]
    assert adapter(platform.url).apply(SPEC) == "active"
    assert len(platform.requests) == 2 and len(platform.effects) == 1


def test_unreachable_platform_fails_after_max_attempts() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PlatformError, match=r"after 2 attempts .*ConnectError"):
        adapter(f"http://127.0.0.1:{port}", attempts=2).apply(SPEC)


def test_http_adapter_needs_an_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEWARD_PLATFORM__ADAPTER", "http")
    reset_caches()
    with pytest.raises(PlatformError, match="api_url is not set"):
        get_adapter(None, get_settings())  # type: ignore[arg-type]


# --- end to end: the sweeper's enforce step through the admin API --------------------------


def _actions(engine: Engine, case_id: int) -> list[tuple[str, ActionStatus, str | None]]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(PlatformAction).where(PlatformAction.idempotency_key.like(f"case-{case_id}-%"))
        )
        return sorted((a.target_id, a.status, a.prior_status) for a in rows)


def test_a_transient_failure_in_a_batch_is_retried_by_its_redo(
    engine: Engine, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = f.case_in(engine, CaseStatus.ENFORCEMENT_DUE, apps=2)
    monkeypatch.setenv("CASEWARD_PLATFORM__ADAPTER", "http")
    monkeypatch.setenv("CASEWARD_PLATFORM__API_URL", platform.url)
    monkeypatch.setenv("CASEWARD_PLATFORM__MAX_ATTEMPTS", "1")
    reset_caches()
    platform.script = ["ok", 500]
    report = sweeper.run_step(engine, "enforce", now=TIMES["enforce"])
    assert (report.done, report.failed) == ([case_id], {})
    assert len(platform.effects) == 2  # each token revoked once, though asked three times
    assert len(platform.requests) == 4


def test_enforcement_through_the_api_never_applies_an_action_twice(
    engine: Engine, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = f.case_in(engine, CaseStatus.ENFORCEMENT_DUE, apps=2)  # revoke two tokens
    monkeypatch.setenv("CASEWARD_PLATFORM__ADAPTER", "http")
    monkeypatch.setenv("CASEWARD_PLATFORM__API_URL", platform.url)
    monkeypatch.setenv("CASEWARD_PLATFORM__API_TOKEN", "tok-e2e")
    monkeypatch.setenv("CASEWARD_PLATFORM__MAX_ATTEMPTS", "1")  # no backoff sleeps
    reset_caches()
    now = TIMES["enforce"]

    # the first token is revoked on the platform, then the call for the second fails, in
    # the batch and again in its case-by-case redo: the case's transaction rolls back as if
    # the process had crashed there
    platform.script = ["ok", 500, "ok", 500]
    report = sweeper.run_step(engine, "enforce", now=now)
    assert list(report.failed) == [case_id] and "HTTP 500" in report.failed[case_id]
    assert {status for _, status, _ in _actions(engine, case_id)} == {ActionStatus.PLANNED}
    assert len(platform.effects) == 1

    # the retry repeats the first call with the same key: the platform does not redo it
    report = sweeper.run_step(engine, "enforce", now=now)
    assert report.done == [case_id]
    first_key = platform.keys()[0]
    assert platform.keys().count(first_key) == 3  # batch, redo, next run
    targets = sorted(t for t, _, _ in _actions(engine, case_id))
    assert sorted(t for _, _, t in platform.effects) == targets  # each applied exactly once
    assert [(s, p) for _, s, p in _actions(engine, case_id)] == [
        (ActionStatus.APPLIED, "active")
    ] * 2  # the prior status of the first answer, not "revoke_token"
    assert all(h["authorization"] == "Bearer tok-e2e" for _, h, _ in platform.requests)

    # once enforced, another run sends nothing
    sent = len(platform.requests)
    assert sweeper.run_step(engine, "enforce", now=now).done == []
    assert len(platform.requests) == sent
    snapshot = f.db_state(engine, case_id)["snapshot"]
    assert snapshot.status is CaseStatus.ENFORCED  # type: ignore[attr-defined]
