"""Benchmark: render + enqueue e-mails, then deliver them to a local SendGrid-compatible server.

    python benchmarks/bench_email.py [--n 10000] [--developers 5] [--latency-ms 20]
                                     [--concurrency 8] [--db URL] [--skip-delivery]

Render + enqueue, three ways, each over ``--n`` e-mails (``--n / --developers`` cases):

* ``per_case``: one transaction per case, the case and its event loaded first (a lead's
  command);
* ``batched``: 500 cases loaded in one query per transaction and a savepoint per case
  (the sweeper's slow path, taken when a case in the batch fails);
* ``sweeper``: the real path, ``cases.lifecycle.sweeper.run_step(engine, "send-outreach")`` over
  confirmed cases (lock, transition, event, outreach e-mails).

Each is compared with rendering the same templates and contexts in a bare loop; the ratio is
our overhead. Times are wall clock and CPU time of this process (``process_time``): on a
shared machine the CPU figure is the stable one (with PostgreSQL it leaves out the server's
work, so compare wall clock there).

Delivery sends everything through the official SendGrid client to a server in another
process (so it does not compete for our GIL) that answers 202 after ``--latency-ms``. With
latency L and concurrency C the server-bound ceiling is C / L. It runs with our keep-alive
transport and with the library's own (one connection per request).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from sqlalchemy import Engine, select, update

import cases.core.models  # noqa: F401
from cases.core.db import Base, make_engine, session_scope
from cases.core.enums import CaseStatus, EmailTemplate, OutboxStatus
from cases.core.models import App, Case, CaseEvent, Developer, OutboxMessage
from cases.core.settings import EmailSettings, Settings, get_settings
from cases.email import context, delivery, outbox
from cases.email.senders.sendgrid import SendGridSender
from cases.lifecycle import service, sweeper

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FCR = EmailTemplate.FEATURE_CHANGE_REQUEST
CHANGES = {"changes": ["Stop cross-posting identical content.", "Add a CAPTCHA before posting."]}


class NullHooks:
    """Delivery without the lifecycle (the benchmark cases have no real history)."""

    def notice_delivered(self, session: Any, **_: Any) -> None:
        return None

    def delivery_failed(self, session: Any, **_: Any) -> None:
        return None


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall clock and CPU seconds of the block."""
    result: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield result
    result["wall"] = time.perf_counter() - wall
    result["cpu"] = time.process_time() - cpu


# --- the server, in its own process ---------------------------------------------------------


def _serve(port: Synchronized, counter: Synchronized, latency: float) -> None:  # type: ignore[type-arg]
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if latency:
                time.sleep(latency)
            with counter.get_lock():
                counter.value += 1
                n = counter.value
            self.send_response(202)
            self.send_header("X-Message-Id", f"bench-{n}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    port.value = server.server_address[1]
    server.serve_forever()


class Server:
    """A SendGrid stand-in in a child process: 202 after ``latency`` seconds."""

    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = context.Value("i", 0)
        self.requests = context.Value("l", 0)
        self.process = context.Process(
            target=_serve, args=(self.port, self.requests, latency), daemon=True
        )
        self.process.start()
        while not self.port.value:
            time.sleep(0.01)
        self.host = f"http://127.0.0.1:{self.port.value}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


# --- data -------------------------------------------------------------------------------


def build_cases(
    engine: Engine, cases_n: int, developers: int, status: CaseStatus, prefix: str
) -> list[int]:
    """``cases_n`` spam cases with ``developers`` developers (one app each) and one event."""
    ids: list[int] = []
    with session_scope(engine) as session:
        for _ in range(cases_n):
            c = len(ids)
            tag = f"{prefix}{c}"
            devs = [
                Developer(
                    id=f"d{tag}-{i}",
                    handle=f"dev{tag}-{i}",
                    email=f"dev{c}.{i}@example.org",
                    created_at=NOW,
                )
                for i in range(developers)
            ]
            apps = [
                App(
                    id=f"a{tag}-{i}",
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
                status=status,
                apps=apps,
                developers=devs,
                event_count=1,
            )
            session.add_all([*devs, *apps, case])
            session.flush()
            session.add(
                CaseEvent(
                    case_id=case.id,
                    seq=1,
                    at=NOW,
                    actor="bench",
                    kind="request_changes",
                    from_status="outreach_sent",
                    to_status=status.value,
                    reason="bench",
                    data={},
                )
            )
            ids.append(case.id)
    return ids


def _event(session: Any, case_id: int) -> CaseEvent:
    query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id.desc())
    event: CaseEvent = session.scalars(query.limit(1)).one()
    return event


# --- render + enqueue -----------------------------------------------------------------------


def enqueue_per_case(engine: Engine, case_ids: list[int], settings: Settings) -> None:
    """One transaction per case: load the case and its event, render, insert, commit."""
    for case_id in case_ids:
        with session_scope(engine) as session:
            case = service.get_or_raise(session, case_id=case_id)
            outbox.enqueue(
                session,
                case=case,
                event=_event(session, case_id),
                template=FCR,
                now=NOW,
                extra=CHANGES,
                settings=settings,
            )


def enqueue_batched(engine: Engine, case_ids: list[int], settings: Settings) -> None:
    """500 cases per transaction, one query to load them, a savepoint per case."""
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start : start + 500]
        with session_scope(engine) as session:
            events = {
                e.case_id: e
                for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(chunk)))
            }
            for case in service.get_many(session, case_ids=chunk):
                with session.begin_nested():
                    outbox.enqueue(
                        session,
                        case=case,
                        event=events[case.id],
                        template=FCR,
                        now=NOW,
                        extra=CHANGES,
                        settings=settings,
                    )


def run_sweeper(engine: Engine) -> int:
    """The real path: every confirmed case gets its outreach (transition + e-mails)."""
    report = sweeper.run_step(engine, "send-outreach", now=NOW)
    if report.failed:
        raise SystemExit(f"sweeper failed: {list(report.failed.items())[:3]}")
    return len(report.done)


def bare_render(
    engine: Engine, case_ids: list[int], template: EmailTemplate, settings: Settings
) -> dict[str, float]:
    """The same templates and contexts, rendered in a loop with nothing else."""
    renderer = context.renderer_for(settings)
    extra = CHANGES if template is FCR else None
    with session_scope(engine) as session:
        contexts = [
            context.build_context(
                case=case,
                developer=developer,
                template=template,
                now=NOW,
                extra=extra,
                settings=settings,
                catalog=renderer.catalog,
            )
            for case in service.get_many(session, case_ids=case_ids)
            for developer in case.developers
        ]
    with timed() as t:
        for data in contexts:
            renderer.render(template, data)
    return t


def _rates(emails: int, t: dict[str, float], bare: dict[str, float]) -> dict[str, float]:
    return {
        "per_s_wall": round(emails / t["wall"]),
        "per_s_cpu": round(emails / t["cpu"]),
        "overhead_wall": round(t["wall"] / bare["wall"], 2),
        "overhead_cpu": round(t["cpu"] / bare["cpu"], 2),
    }


# --- delivery -------------------------------------------------------------------------------


def requeue(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage).values(
                status=OutboxStatus.PENDING,
                attempts=0,
                claimed_at=None,
                claimed_by=None,
                sent_at=None,
                next_attempt_at=NOW,
            )
        )


def deliver(
    engine: Engine, *, latency_ms: float, concurrency: int, keep_alive: bool, expected: int
) -> dict[str, Any]:
    requeue(engine)
    server = Server(latency_ms / 1000)
    settings = Settings(
        email=EmailSettings(concurrency=concurrency, batch_size=200, sendgrid_host=server.host)
    )
    sender = SendGridSender(api_key="SG.bench", host=server.host, timeout=10, keep_alive=keep_alive)
    try:
        with timed() as t:
            report = delivery.deliver_pending(
                engine,
                now=NOW,
                sender=sender,
                settings=settings,
                hooks=NullHooks(),
                limit=expected,
            )
    finally:
        sender.close()
        server.stop()
    ceiling = round(concurrency / (latency_ms / 1000)) if latency_ms else None
    ok = report.sent == expected == server.requests.value
    return {
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "keep_alive": keep_alive,
        "per_s": round(report.sent / t["wall"]),
        "ceiling_per_s": ceiling,
        "connections": sender.connections_opened if keep_alive else report.sent,
        "cpu_ms_per_email": round(t["cpu"] * 1000 / max(report.sent, 1), 2),
        "ok": ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="E-mails per measurement.")
    parser.add_argument("--developers", type=int, default=5, help="Developers (e-mails) per case.")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="Server latency per call.")
    parser.add_argument("--concurrency", type=int, default=8, help="Provider calls in flight.")
    parser.add_argument("--db", default=None, help="Database URL (default: temporary SQLite).")
    parser.add_argument("--skip-delivery", action="store_true", help="Only render + enqueue.")
    args = parser.parse_args(argv)

    # production settings, which sign every e-mail's personal link: a key of this run's own
    os.environ.setdefault("CASEWARD_PORTAL__SECRET_KEY", secrets.token_urlsafe(32))
    engine = make_engine(args.db or f"sqlite:///{tempfile.mkdtemp(prefix='cw-bench-')}/bench.db")
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    settings = get_settings()  # what the sweeper uses; SendGrid settings are per delivery run
    n_cases = args.n // args.developers
    emails = n_cases * args.developers
    changes, confirmed = CaseStatus.CHANGES_REQUESTED, CaseStatus.CONFIRMED
    per_case_ids = build_cases(engine, n_cases, args.developers, changes, "p")
    batched_ids = build_cases(engine, n_cases, args.developers, changes, "b")
    sweeper_ids = build_cases(engine, n_cases, args.developers, confirmed, "s")
    bare_fcr = bare_render(engine, per_case_ids, FCR, settings)
    bare_outreach = bare_render(engine, sweeper_ids, EmailTemplate.OUTREACH, settings)

    runs: dict[str, Callable[[], object]] = {
        "per_case": lambda: enqueue_per_case(engine, per_case_ids, settings),
        "batched": lambda: enqueue_batched(engine, batched_ids, settings),
        "sweeper": lambda: run_sweeper(engine),
    }
    result: dict[str, Any] = {
        "emails": emails,
        "database": engine.dialect.name,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "bare_render": {
            "fcr_per_s_wall": round(emails / bare_fcr["wall"]),
            "fcr_per_s_cpu": round(emails / bare_fcr["cpu"]),
            "outreach_per_s_wall": round(emails / bare_outreach["wall"]),
            "outreach_per_s_cpu": round(emails / bare_outreach["cpu"]),
        },
    }
    for name, run in runs.items():
        with timed() as t:
            run()
        bare = bare_outreach if name == "sweeper" else bare_fcr
        result[name] = _rates(emails, t, bare)
    with session_scope(engine) as session:
        stored = len(session.scalars(select(OutboxMessage.id)).all())
    ok = stored == 3 * emails
    if not args.skip_delivery:
        result["delivery"] = [
            deliver(
                engine,
                latency_ms=latency,
                concurrency=args.concurrency,
                keep_alive=keep_alive,
                expected=emails,
            )
            for latency in (args.latency_ms, 0.0)
            for keep_alive in (True, False)
        ]
        ok = ok and all(d["ok"] for d in result["delivery"])
    result["load_average_1m_end"] = round(os.getloadavg()[0], 1)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
