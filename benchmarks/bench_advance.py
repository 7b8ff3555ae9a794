"""One advance-cases run over N due cases, with Prefect and directly through the services.

Every case is confirmed, and half of them also have an outreach whose response window has
ended, so one sweep sends N/2 outreach e-mails and N/2 feature-change requests (each an event
plus a rendered outbox row). The same database is copied for each mode; each mode runs in its
own process, so peak RSS is its own.

    .venv/bin/python benchmarks/bench_advance.py [--cases 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SWEEP = T0 + timedelta(days=20)
SERVER_PORT = 4276
# prefect: the advance-cases flow on Prefect's ephemeral server, which runs inside the flow's
# own process (as in tests and make demo); prefect-server: the same flow against a Prefect
# server in its own process, as `caseward serve` and production run it. Each Prefect mode
# then times the deliver-email run that publishes the sweep's events and case artifacts.
MODES = ("direct", "prefect", "prefect-server")


def _env(db: Path, prefect_home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CASEWARD_DATABASE_URL": f"sqlite:///{db}",
        "CASEWARD_EMAIL__MAIL_DIR": str(db.parent / "mail"),
        "CASEWARD_SIMULATION": "true",  # the sweep runs at simulated times
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def setup(n: int) -> None:
    """N confirmed cases; the first half already past their outreach window."""
    from sqlalchemy import func, select, update

    from cases.core.db import Base, get_engine, session_scope
    from cases.core.enums import Policy
    from cases.core.models import App, Case, CaseEvent, Developer, RelayCursor
    from cases.core.schemas import CaseCreate
    from cases.lifecycle import operations, service
    from flows._relay import ARTIFACTS_CURSOR, EVENTS_CURSOR

    engine = get_engine()
    Base.metadata.create_all(engine)
    with session_scope(engine) as session:
        session.add_all(
            Developer(id=f"d{i}", handle=f"dev{i}", email=f"dev{i}@example.org", created_at=T0)
            for i in range(n)
        )
        session.add_all(
            App(
                id=f"a{i}",
                developer_id=f"d{i}",
                name=f"App {i}",
                created_at=T0,
                rate_limit_per_hour=None,
            )
            for i in range(n)
        )
    for start in range(0, n, 1000):
        with session_scope(engine) as session:
            for i in range(start, min(n, start + 1000)):
                case = service.open_case(
                    session,
                    case_in=CaseCreate(
                        policy=Policy.SPAM,
                        app_ids=[f"a{i}"],
                        developer_ids=[f"d{i}"],
                        reason="spam reports",
                        evidence={"spam_reports_per_1000_posts": 7.5},
                    ),
                    actor="detector",
                    now=T0,
                )
                operations.confirm(session, case_id=case.id, actor="lead", reason="ok", now=T0)
                if i < n // 2:
                    operations.send_outreach(session, case_id=case.id, now=T0)
    with session_scope(engine) as session:
        session.execute(
            update(Case).where(Case.status == "outreach_sent").values(deadline=T0 + timedelta(14))
        )
        # the set-up is history: the timed run relays only the events of its own sweep
        last = session.scalar(select(func.max(CaseEvent.id))) or 0
        session.add_all(
            RelayCursor(name=name, last_event_id=last) for name in (EVENTS_CURSOR, ARTIFACTS_CURSOR)
        )


def run(mode: str) -> dict[str, float]:
    from cases.core.db import get_engine
    from cases.lifecycle import sweeper

    relay = 0.0
    if mode == "direct":
        started = time.perf_counter()
        sweeper.advance(get_engine(), now=SWEEP)
        seconds = time.perf_counter() - started
    else:
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        from flows.advance import advance_cases
        from flows.deliver import deliver_email

        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            deliver_email(now=T0.isoformat(), limit=0)  # start the ephemeral server first
            started = time.perf_counter()
            state = advance_cases(now=SWEEP.isoformat(), return_state=True)
            seconds = time.perf_counter() - started
            assert state.is_completed(), state.message
            # the next deliver-email run publishes the sweep's events and case artifacts
            started = time.perf_counter()
            deliver_email(now=SWEEP.isoformat(), limit=0)
            relay = time.perf_counter() - started
    return {
        "seconds": seconds,
        "relay_seconds": relay,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--mode", choices=["setup", *MODES])
    args = parser.parse_args()
    if args.mode == "setup":
        setup(args.cases)
        return
    if args.mode:
        print(json.dumps(run(args.mode)))
        return
    work = Path(tempfile.mkdtemp(prefix="caseward-bench-"))
    base = work / "base.db"
    env = _env(base, work / "prefect")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--mode", "setup", "--cases", str(args.cases)],
        env=env,
        check=True,
    )
    print(f"setup: {args.cases:,} due cases in {time.perf_counter() - started:.0f}s")
    results = {}
    for mode in MODES:
        db = work / f"{mode}.db"
        shutil.copy(base, db)
        env = _env(db, work / "prefect")
        server = None
        if mode == "prefect-server":
            from caseward.serve import start_server

            os.environ["PREFECT_HOME"] = str(work / "prefect-server")
            server = start_server("127.0.0.1", SERVER_PORT)
            env["PREFECT_API_URL"] = f"http://127.0.0.1:{SERVER_PORT}/api"
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--mode", mode],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
        results[mode] = json.loads(out.strip().splitlines()[-1])
        r = results[mode]
        relayed = f"  then relay {r['relay_seconds']:.2f}s" if r["relay_seconds"] else ""
        print(
            f"{mode:14} {r['seconds']:7.2f}s  {args.cases / r['seconds']:6.0f} cases/s  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB{relayed}"
        )
    for mode in ("prefect", "prefect-server"):
        overhead = results[mode]["seconds"] / results["direct"]["seconds"] - 1
        print(f"Prefect overhead ({mode}): {overhead:+.0%} of the direct run")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
