"""Fixtures of the e-mail tests: a temporary database, realistic cases and a fake SendGrid.

Rows are built directly with the models; the local SendGrid server is a real HTTP server
that the official client talks to, recording each request's JSON and answering with
scripted statuses.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import cases.core.models  # noqa: F401  (registers every table)
from cases.core.db import Base, make_engine
from cases.core.enums import ActionKind, CaseStatus, EmailTemplate
from cases.core.models import App, Case, CaseEvent, Developer
from cases.core.settings import get_settings
from cases.statements.build import Decision
from cases.statements.notice import reasons_context
from tests.local_http import serving

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOSTILE_NAME = "<script>x</script>"
INJECTION_NAME = "Nice App\r\nBcc: victim@example.com"
_ids = itertools.count(1)


def extras_for(template: EmailTemplate, case: Case) -> dict[str, Any]:
    """The ``extra`` the lifecycle passes for ``template`` (see the enqueue contract)."""
    deadline = NOW + timedelta(days=30)
    actions = [
        {"kind": kind, "target_type": "app", "target_id": app.id}
        for app in case.apps
        for kind in (ActionKind.RESTRICT_APP, ActionKind.REVOKE_TOKEN, ActionKind.BAN_APP)
    ] + [
        {"kind": ActionKind.SUSPEND_ACCOUNT, "target_type": "account", "target_id": d.id}
        for d in case.developers
    ]
    changes = [
        "Stop posting the same message from several accounts within a minute.",
        "Add a CAPTCHA before an account can post through the app.",
    ]
    by_template: dict[EmailTemplate, dict[str, Any]] = {
        EmailTemplate.FEATURE_CHANGE_REQUEST: {"changes": changes},
        EmailTemplate.DEADLINE_REMINDER: {"deadline": deadline, "changes": changes},
        EmailTemplate.EXTENSION_GRANTED: {
            "old_deadline": deadline,
            "new_deadline": deadline + timedelta(days=14),
            "changes": changes,
            "decision_reason": "The developer is rolling out the CAPTCHA.",
        },
        EmailTemplate.EXTENSION_REQUESTED: {"deadline": deadline, "changes": changes},
        EmailTemplate.EXTENSION_DECLINED: {
            "deadline": deadline,
            "changes": changes,
            "decision_reason": "There has been no progress so far.",
        },
        EmailTemplate.CASE_RESOLVED: {"decision_reason": "The CAPTCHA is live."},
        EmailTemplate.ENFORCEMENT_DECLINED: {"decision_reason": "Fixed the day after."},
        EmailTemplate.APPEAL_UPHELD: {"decision_reason": "The reports continued after the ban."},
        EmailTemplate.APPEAL_OVERTURNED: {"decision_reason": "The reports were coordinated."},
    }
    for kind in ("app_restricted", "token_revoked", "app_banned", "account_suspended"):
        by_template[EmailTemplate(kind)] = {
            "actions": actions,
            "reason": "Spam continued after the deadline for the requested changes.",
            "urgent": False,
            "deadline": deadline,
            "changes": changes,
            "statement_of_reasons": reasons_for(case),
        }
    return by_template.get(template, {})


def reasons_decision(case: Case) -> Decision:
    """A detected spam case's decision: confirmed by a lead, enforced after its deadline."""
    return Decision(
        enforcement_id=1,
        case_id=case.id,
        policy=case.policy,
        source="detection",
        evidence={"flagged_reports": 42, "posts": 8100, "reports_per_1000_posts": 5.19},
        urgent=False,
        confirmed_by="lead-ann",
        decided_by="caseward",
        decided_at=NOW,
        notified_at=NOW - timedelta(days=31),
        due_at=NOW - timedelta(days=1),
        apps=len(case.apps),
        accounts=len(case.developers),
        reversed_at=None,
    )


def reasons_for(case: Case) -> dict[str, Any]:
    """The statement of reasons an enforcement notice of ``case`` renders."""
    return reasons_context(reasons_decision(case), get_settings())


def make_case(
    session: Session,
    *,
    app_name: str = "Weather Poster",
    developers: int = 1,
    policy: str = "spam",
    email: str | None = None,
    status: CaseStatus = CaseStatus.CHANGES_REQUESTED,
) -> tuple[Case, CaseEvent]:
    """A case with ``developers`` accounts (one app each) and the event of its last step."""
    devs, apps = [], []
    for _ in range(developers):
        n = next(_ids)
        dev = Developer(
            id=f"d-{uuid.uuid4().hex[:6]}-{n}",
            handle=f"dev{n}",
            email=email or f"dev{n}@example.org",
            created_at=NOW,
        )
        app = App(
            id=f"a-{uuid.uuid4().hex[:6]}-{n}",
            developer_id=dev.id,
            name=app_name,
            description="Posts the weather every hour. <b>bold</b>",
            website="https://weather.example.net/" if n % 2 else "javascript:alert(1)",
            callback_urls="",
            created_at=NOW,
            rate_limit_per_hour=None,
        )
        devs.append(dev)
        apps.append(app)
    case = Case(
        policy=policy,
        reason="Users reported 42 posts from this app as spam in the last 7 days.",
        evidence={
            "spam_reports": 42,
            "posts": 8100,
            "reports_per_1000_posts": 5.185,
            "app_ids": [a.id for a in apps],
            "score": 0.9,
        },
        opened_by="detector",
        created_at=NOW,
        status_changed_at=NOW,
        status=status,
        apps=apps,
        developers=devs,
        event_count=1,
    )
    session.add_all([*devs, *apps, case])
    session.flush()
    event = CaseEvent(
        case_id=case.id,
        seq=1,
        at=NOW,
        actor="lead",
        kind="request_changes",
        from_status=CaseStatus.OUTREACH_SENT.value,
        to_status=status.value,
        reason="test step",
        data={},
    )
    session.add(event)
    session.flush()
    return case, event


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database with every table."""
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _pg_admin_url() -> str:
    raw = os.environ.get(
        "CASEWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    url = make_url(raw)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_db() -> Iterator[Engine]:
    """A PostgreSQL database of its own, created and dropped around the test."""
    admin_url = _pg_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable at {admin_url}: {type(exc).__name__}")
    name = f"caseward_test_email_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    )
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class FakeSendGrid:
    """A local SendGrid-compatible server: records requests, answers scripted statuses."""

    statuses: list[int] = field(default_factory=list)  # consumed in order; then 202
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0
    server: ThreadingHTTPServer | None = None
    peers: list[int] = field(default_factory=list)  # client port of each request
    drop_connections: bool = False  # close each connection after answering, without warning
    error_field: str | None = None  # the request field a scripted error names

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 202


def _handler(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            status = fake.next_status()
            with fake.lock:
                fake.requests.append({"path": self.path, "status": status, "json": body})
                fake.headers.append(dict(self.headers))
                fake.peers.append(self.client_address[1])
                n = len(fake.requests)
            if fake.delay:
                threading.Event().wait(fake.delay)
            payload = (
                b""
                if status == 202
                else json.dumps(
                    {"errors": [{"message": f"scripted {status}", "field": fake.error_field}]}
                ).encode()
            )
            self.send_response(status)
            if status == 202:
                self.send_header("X-Message-Id", f"sg-{n}")
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if fake.drop_connections:  # no "Connection: close": the client finds out
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def sendgrid_server() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()
    with serving(_handler(fake)) as server:
        fake.server = server
        yield fake
