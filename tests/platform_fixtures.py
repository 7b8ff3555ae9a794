"""A local fake of the platform's admin API: a real HTTP server on 127.0.0.1.

It honours ``Idempotency-Key`` as the admin API contract requires (a repeated key returns the
first answer and changes nothing) and keeps each target's status the way a platform would:
an action never lowers a status, a reversal sets the status it is asked to restore. Tests
script the answers of the next requests ("ok", "drop" to close the connection unanswered,
"hold" to wait until released, or an HTTP status), draw answers from ``faults`` once the
script is empty, and may refuse some targets outright.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cases.core.enums import ActionKind, TargetType
from cases.enforcement.platform.base import EFFECT
from cases.enforcement.standing import SEVERITY


@dataclass
class FakePlatform:
    url: str = ""
    script: list[Any] = field(default_factory=list)  # next answers: "ok", "drop", "hold", a status
    refused: set[str] = field(default_factory=set)  # target ids answered 422, always
    faults: Callable[[str, dict[str, Any]], Any] | None = None  # (path, body) -> an answer
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key
    effects: list[tuple[str, str, str]] = field(default_factory=list)  # what was really done
    status: dict[str, str] = field(default_factory=dict)  # target id -> status
    held: threading.Event = field(default_factory=threading.Event)  # a "hold" request arrived
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
        with self.lock:
            self.requests.append((path, headers, body))
            if self.script:
                answer = self.script.pop(0)
            else:
                answer = self.faults(path, body) if self.faults else "ok"
        if answer == "hold":  # the caller waits on an answer that comes too late
            self.held.set()
            self.release.wait(30)
            return 503
        if answer not in ("ok", "drop"):
            return answer
        with self.lock:
            key = headers.get("idempotency-key", "")
            if key not in self.answers:  # a repeated key gets the first answer, nothing else
                if body["target_id"] in self.refused:
                    return 422
                self.answers[key] = {"prior_status": self._effect(path, body)}
            return "drop" if answer == "drop" else self.answers[key]

    def _effect(self, path: str, body: dict[str, Any]) -> str:
        target, target_type = body["target_id"], TargetType(body["target_type"])
        prior = self.status.get(target, "active")
        if path.endswith("/reverse"):
            self.status[target] = body["restore_status"]
        else:
            effect = str(EFFECT[ActionKind(body["action"])])
            order = SEVERITY[target_type]
            self.status[target] = max(prior, effect, key=order.index)
        self.effects.append((path, body["action"], target))
        return prior

    def keys(self) -> list[str]:
        return [headers["idempotency-key"] for _, headers, _ in self.requests]


def _handler(fake: FakePlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:  # the caller was killed mid-request
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = fake.handle(self.path, headers, body)
            if answer == "drop":  # done, but the connection dies without an answer
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

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a caller killed mid-request resets its connection: expected in these tests


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()
    server = _Server(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join()
