"""Benchmark: render + enqueue N e-mails, then deliver them to a local SendGrid-compatible server.

    python benchmarks/bench_email.py [--n 10000] [--developers 5] [--latency-ms 20]
                                     [--concurrency 8] [--db URL]

Reports e-mails/s for render+enqueue (one transaction per case, as the lifecycle does), the
same templates rendered in a bare loop (the ratio is our overhead: context building, the
ORM rows, the commit), and e-mails/s delivered through the official SendGrid client to a
local server that answers 202 after ``--latency-ms`` (a stand-in for the provider's latency).
With latency L and concurrency C, a delivery limited by the server runs near C / L.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

import cases.models  # noqa: F401
from cases import notifications, outbox
from cases.db import Base, make_engine, session_scope
from cases.enums import EmailTemplate
from cases.mail.sendgrid import SendGridSender
from cases.models import App, Case, CaseEvent, Developer
from cases.settings import EmailSettings, Settings
from cases.states import CaseStatus

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CHANGES = {"changes": ["Stop cross-posting identical content.", "Add a CAPTCHA before posting."]}


class NullHooks:
    """Delivery without the lifecycle (the benchmark cases have no real history)."""

    def notice_delivered(self, session: Any, **_: Any) -> None:
        return None

    def delivery_failed(self, session: Any, **_: Any) -> None:
        return None


def start_server(latency: float) -> tuple[ThreadingHTTPServer, list[int]]:
    counter = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if latency:
                time.sleep(latency)
            with lock:
                counter[0] += 1
            self.send_response(202)
            self.send_header("X-Message-Id", f"bench-{counter[0]}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counter


def build_cases(engine: Engine, cases_n: int, developers: int) -> list[int]:
    ids: list[int] = []
    with session_scope(engine) as session:
        for c in range(cases_n):
            devs = [
                Developer(
                    id=f"d{c}-{i}",
                    handle=f"dev{c}-{i}",
                    email=f"dev{c}.{i}@example.org",
                    created_at=NOW,
                )
                for i in range(developers)
            ]
            apps = [
                App(
                    id=f"a{c}-{i}",
                    developer_id=d.id,
                    name=f"Poster <{c}-{i}>",
                    description="posts",
                    website="https://poster.example.net",
                    callback_urls="",
                    created_at=NOW,
                    rate_limit_per_hour=None,
                )
                for i, d in enumerate(devs)
            ]
            case = Case(
                policy="spam",
                reason="Users reported spam from these apps.",
                evidence={"spam_reports": 40 + c, "posts": 9000},
                opened_by="bench",
                created_at=NOW,
                status_changed_at=NOW,
                status=CaseStatus.CHANGES_REQUESTED,
                apps=apps,
                developers=devs,
            )
            session.add_all([*devs, *apps, case])
            session.flush()
            session.add(
                CaseEvent(
                    case_id=case.id,
                    at=NOW,
                    actor="bench",
                    kind="request_changes",
                    from_status="outreach_sent",
                    to_status="changes_requested",
                    reason="bench",
                    data={},
                )
            )
            ids.append(case.id)
    return ids


def enqueue_all(engine: Engine, case_ids: list[int], settings: Settings) -> float:
    start = time.perf_counter()
    for case_id in case_ids:
        with session_scope(engine) as session:
            case = session.scalars(
                select(Case)
                .where(Case.id == case_id)
                .options(selectinload(Case.apps), selectinload(Case.developers))
            ).one()
            event = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).one()
            notifications.enqueue(
                session,
                case=case,
                event=event,
                template=EmailTemplate.FEATURE_CHANGE_REQUEST,
                now=NOW,
                extra=CHANGES,
                settings=settings,
            )
    return time.perf_counter() - start


def bare_render(engine: Engine, case_ids: list[int], settings: Settings) -> tuple[float, int]:
    """The same templates and contexts, rendered in a loop with nothing else."""
    renderer = notifications.renderer_for(settings)
    contexts = []
    with session_scope(engine) as session:
        loaded = session.scalars(
            select(Case)
            .where(Case.id.in_(case_ids))
            .options(selectinload(Case.apps), selectinload(Case.developers))
        ).all()
        for case in loaded:
            for developer in case.developers:
                contexts.append(
                    notifications.build_context(
                        case=case,
                        developer=developer,
                        template=EmailTemplate.FEATURE_CHANGE_REQUEST,
                        now=NOW,
                        extra=CHANGES,
                        settings=settings,
                        catalog=renderer.catalog,
                    )
                )
    start = time.perf_counter()
    for context in contexts:
        renderer.render(EmailTemplate.FEATURE_CHANGE_REQUEST, context)
    return time.perf_counter() - start, len(contexts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="E-mails in total.")
    parser.add_argument("--developers", type=int, default=5, help="Developers (e-mails) per case.")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="Server latency per call.")
    parser.add_argument("--concurrency", type=int, default=8, help="Provider calls in flight.")
    parser.add_argument("--db", default=None, help="Database URL (default: temporary SQLite).")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="caseward-bench-"))
    engine = make_engine(args.db or f"sqlite:///{tmp}/bench.db")
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    server, counter = start_server(args.latency_ms / 1000)
    settings = Settings(
        email=EmailSettings(
            concurrency=args.concurrency,
            batch_size=200,
            sendgrid_host=f"http://127.0.0.1:{server.server_port}",
        )
    )
    case_ids = build_cases(engine, args.n // args.developers, args.developers)
    total = len(case_ids) * args.developers

    enqueue_s = enqueue_all(engine, case_ids, settings)
    bare_s, rendered = bare_render(engine, case_ids, settings)
    sender = SendGridSender(api_key="SG.bench", host=settings.email.sendgrid_host, timeout=10)
    start = time.perf_counter()
    report = outbox.deliver_pending(
        engine, now=NOW, sender=sender, settings=settings, hooks=NullHooks()
    )
    deliver_s = time.perf_counter() - start
    server.shutdown()
    result = {
        "emails": total,
        "database": engine.dialect.name,
        "render_enqueue_per_s": round(total / enqueue_s),
        "bare_render_per_s": round(rendered / bare_s),
        "overhead_ratio": round(enqueue_s / bare_s, 2),
        "deliver_per_s": round(report.sent / deliver_s),
        "delivered": report.sent,
        "server_requests": counter[0],
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "server_bound_ceiling_per_s": round(args.concurrency / (args.latency_ms / 1000))
        if args.latency_ms
        else None,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if report.sent == total == counter[0] else 1


if __name__ == "__main__":
    raise SystemExit(main())
