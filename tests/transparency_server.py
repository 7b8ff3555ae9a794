"""A local stand-in for the DSA Transparency Database API: a real HTTP server.

It enforces what the published API documents, independently of Caseward's validator: the
bearer token (401), 1 to 100 statements per ``POST /statements`` (422), each statement's
required fields, accepted values, lengths and puid form (422 listing ``statement_<i>``, and
then none is created), puids unique within the platform (422 with ``existing_puids``), and
answers ``GET /statement/existing-puid/{puid}`` with 302 or 404. Statuses can be scripted
(429 with Retry-After, 5xx, or "drop": create the statements, then close the connection
without an answer).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import reset_caches
from tests.local_http import serving

TOKEN = "X|test-token"
PREFIX = "/api/v1"
EU = {
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
}  # fmt: skip
ONE_OF = {
    "decision_provision": {
        "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "DECISION_PROVISION_TOTAL_SUSPENSION",
        "DECISION_PROVISION_PARTIAL_TERMINATION",
        "DECISION_PROVISION_TOTAL_TERMINATION",
    },
    "decision_account": {"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"},
    "account_type": {"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"},
    "decision_ground": {"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"},
    "incompatible_content_illegal": {"Yes", "No"},
    "source_type": {
        "SOURCE_ARTICLE_16",
        "SOURCE_TRUSTED_FLAGGER",
        "SOURCE_TYPE_OTHER_NOTIFICATION",
        "SOURCE_VOLUNTARY",
    },
    "automated_detection": {"Yes", "No"},
    "automated_decision": {
        "AUTOMATED_DECISION_FULLY",
        "AUTOMATED_DECISION_PARTIALLY",
        "AUTOMATED_DECISION_NOT_AUTOMATED",
    },
}
REQUIRED = [
    "puid",
    "decision_ground",
    "content_type",
    "category",
    "territorial_scope",
    "content_date",
    "application_date",
    "decision_facts",
    "source_type",
    "automated_detection",
    "automated_decision",
]
MAX = {"decision_facts": 5000, "incompatible_content_ground": 500}
MAX |= {"incompatible_content_explanation": 2000, "category_specification_other": 500}


@dataclass
class TransparencyDatabase:
    """The server's state: stored statements, every request, and scripted answers."""

    script: list[int | str] = field(default_factory=list)  # then normal answers
    refuse_categories: set[str] = field(default_factory=set)  # on top of the rules
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: list[list[str]] = field(default_factory=list)  # the puids of each POST
    gets: list[str] = field(default_factory=list)
    created: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"

    def next_scripted(self) -> int | str | None:
        with self.lock:
            return self.script.pop(0) if self.script else None

    def problems(self, statement: dict[str, Any]) -> dict[str, list[str]]:
        """The rules of the API documentation, written here on their own."""
        errors: dict[str, list[str]] = {}
        for name in REQUIRED:
            if statement.get(name) in (None, "", []):
                errors[name] = [f"The {name} field is required."]
        decisions = ("decision_visibility", "decision_monetary", "decision_provision")
        if not any(statement.get(d) for d in (*decisions, "decision_account")):
            errors["decision_provision"] = ["A decision field is required."]
        for name, allowed in ONE_OF.items():
            if name in statement and statement[name] not in allowed:
                errors[name] = [f"The selected {name} is invalid."]
        if statement.get("content_type") != ["CONTENT_TYPE_APP"]:
            errors.setdefault("content_type", ["Only apps here."])
        category = str(statement.get("category", ""))
        if not category.startswith("STATEMENT_CATEGORY_") or category in self.refuse_categories:
            errors["category"] = ["The selected category is invalid."]
        if not set(statement.get("territorial_scope") or []) <= EU:
            errors["territorial_scope"] = ["The selected territorial scope is invalid."]
        for name, limit in MAX.items():
            if len(str(statement.get(name, ""))) > limit:
                errors[name] = [f"The {name} must not be greater than {limit} characters."]
        for name in ("content_date", "application_date"):
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(statement.get(name, ""))):
                errors[name] = [f"The {name} does not match the format Y-m-d."]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,500}", str(statement.get("puid", ""))):
            errors["puid"] = ["The puid format is invalid."]
        return errors

    def create(self, statements: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        if not 1 <= len(statements) <= 100:
            return 422, {"errors": {"statements": ["The statements must have 1 to 100 items."]}}
        errors = {
            f"statement_{i}": found
            for i, statement in enumerate(statements)
            if (found := self.problems(statement))
        }
        if errors:
            return 422, {"errors": errors}
        puids = [str(s["puid"]) for s in statements]
        with self.lock:
            taken = sorted({p for p in puids if p in self.stored or puids.count(p) > 1})
            if taken:
                message = "The platform identifier(s) are not all unique within this call."
                return 422, {
                    "message": message,
                    "errors": {"puid": [message]} | {"existing_puids": taken},
                }
            created = []
            for statement in statements:
                record = statement | {"uuid": str(uuid.uuid4()), "created_at": "2026-12-18"}
                record["permalink"] = f"https://tdb.example/statement/{record['uuid']}"
                self.stored[record["puid"]] = record
                self.created[record["puid"]] += 1
                created.append(record)
        return 201, {"statements": created}


def _handler(db: TransparencyDatabase) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self._answer(401, {"message": "Unauthenticated."}, {})
            return False

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            statements = body.get("statements") or []
            with db.lock:
                db.posts.append([str(s.get("puid")) for s in statements])
            if not self._authorised():
                return
            scripted = db.next_scripted() if self.path == f"{PREFIX}/statements" else None
            if scripted == "drop":  # created, but the answer is lost
                db.create(statements)
                self.close_connection = True
                return
            if isinstance(scripted, int):
                headers = {"Retry-After": "1"} if scripted == 429 else {}
                self._answer(scripted, {"message": f"scripted {scripted}"}, headers)
                return
            if self.path != f"{PREFIX}/statements":
                self._answer(404, {"message": "Not Found"}, {})
                return
            status, answer = db.create(statements)
            self._answer(status, answer, {})

        def do_GET(self) -> None:
            if not self._authorised():
                return
            route = f"{PREFIX}/statement/existing-puid/"
            if not self.path.startswith(route):
                self._answer(404, {"message": "Not Found"}, {})
                return
            puid = unquote(self.path.removeprefix(route))
            with db.lock:
                db.gets.append(puid)
                found = db.stored.get(puid)
            if found is None:
                self._answer(404, {"message": "statement of reason not found"}, {})
            else:
                self._answer(302, found, {})

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def transparency_db() -> Iterator[TransparencyDatabase]:
    db = TransparencyDatabase()
    with serving(_handler(db)) as server:
        db.server = server
        yield db


@pytest.fixture
def transparency_api(
    transparency_db: TransparencyDatabase, monkeypatch: pytest.MonkeyPatch
) -> TransparencyDatabase:
    """The local database, configured as Caseward's endpoint, with short backoffs."""
    monkeypatch.setenv("CASEWARD_STATEMENTS__API_URL", transparency_db.url)
    monkeypatch.setenv("CASEWARD_STATEMENTS__API_TOKEN", TOKEN)
    monkeypatch.setenv("CASEWARD_STATEMENTS__BACKOFF_BASE_SECONDS", "0.01")
    monkeypatch.setenv("CASEWARD_STATEMENTS__BACKOFF_MAX_SECONDS", "0.05")
    monkeypatch.setenv("CASEWARD_STATEMENTS__MAX_ATTEMPTS", "3")
    reset_caches()
    return transparency_db
