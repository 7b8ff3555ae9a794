"""One advance-cases run over N due cases, with Prefect and directly through the services.

Every case is confirmed, and half of them also have an outreach whose response window has
ended, so one sweep sends N/2 outreach e-mails and N/2 feature-change requests (each an event
plus a rendered outbox row). The same database is copied for each mode (an SQLite file, or on
PostgreSQL a database created from the set-up one as its template, all dropped at the end);
each mode runs in its own process, so peak RSS and CPU time are its own. The figure is due
cases per second: the cases the sweep moved (counted in the database afterwards) over its
wall time.

    .venv/bin/python benchmarks/bench_advance.py [--cases 10000] [--database-url URL]
        [--modes direct,prefect,prefect-server,two-processes] [--repeat N]

``--database-url`` is Caseward's database: a temporary SQLite file by default; with a
PostgreSQL URL (``postgresql://postgres@127.0.0.1:5432/postgres``) the benchmark creates its
own databases ``caseward_bench_advance_<pid>_*`` on that server and drops them afterwards.
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
from typing import Any

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SWEEP = T0 + timedelta(days=20)
SERVER_PORT = 4276
# prefect: the advance-cases flow on Prefect's ephemeral server, which the flow's own process
# starts (as in tests and make demo); prefect-server: the same flow against a Prefect server
# in its own process, as `caseward serve` and production run it. Each Prefect mode then times
# the deliver-email run that publishes the sweep's events and case artifacts.
# two-processes: two `direct` processes at once on one database, splitting one sweep (each
# batch's due rows are selected FOR UPDATE SKIP LOCKED), as two workers would
MODES = ("direct", "prefect", "prefect-server", "two-processes")


def _env(url: str, work: Path, prefect_home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CASEWARD_DATABASE_URL": url,
        "CASEWARD_EMAIL__MAIL_DIR": str(work / "mail"),
        "CASEWARD_SIMULATION": "true",  # the sweep runs at simulated times
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def setup(n: int) -> None:
    """N confirmed cases, opened as detection opens them and confirmed in bulk; the first
    half already past the response window of an outreach the sweeper sent."""
    from sqlalchemy import func, select, update

    from cases.core.db import Base, get_engine, session_scope
    from cases.core.enums import CaseStatus, Policy
    from cases.core.models import App, Case, CaseEvent, Developer, RelayCursor
    from cases.core.schemas import CaseCreate
    from cases.leads import bulk
    from cases.lifecycle import service, sweeper
    from flows._relay import ARTIFACTS_CURSOR, EVENTS_CURSOR

    engine = get_engine()
    Base.metadata.create_all(engine)
    with session_scope(engine) as session:
        session.add_all(
            Developer(id=f"d{i}", handle=f"dev{i}", email=f"dev{i}@example.org", created_at=T0)
            for i in range(n)
        )
        session.flush()
        session.add_all(
            App(id=f"a{i}", developer_id=f"d{i}", name=f"App {i}", created_at=T0) for i in range(n)
        )
    confirmed = bulk.DecisionInput(actor="lead", now=T0, reason="evidence reviewed")
    for half in (range(n // 2), range(n // 2, n)):
        with session_scope(engine) as session:
            ids = service.open_cases(
                session,
                cases_in=[
                    CaseCreate(
                        policy=Policy.SPAM,
                        app_ids=[f"a{i}"],
                        developer_ids=[f"d{i}"],
                        reason="spam reports",
                        evidence={"spam_reports_per_1000_posts": 7.5},
                    )
                    for i in half
                ],
                actor="detector",
                now=T0,
            )
        decided = bulk.decide(engine, "confirm", ids, inputs=confirmed)
        assert len(decided.done) == len(ids), decided
        if half.start == 0:
            sweeper.run_step(engine, "send-outreach", now=T0)
    with session_scope(engine) as session:
        session.execute(
            update(Case)
            .where(Case.status == CaseStatus.OUTREACH_SENT)
            .values(deadline=T0 + timedelta(14))  # as if delivered at T0
        )
        # the set-up is history: the timed run relays only the events of its own sweep
        last = session.scalar(select(func.max(CaseEvent.id))) or 0
        session.add_all(
            RelayCursor(name=name, last_event_id=last) for name in (EVENTS_CURSOR, ARTIFACTS_CURSOR)
        )
    engine.dispose()  # an SQLite file is copied next: nothing may stay in its WAL


def _moved() -> int:
    """The cases the timed sweep moved: one event each, at the sweep's instant."""
    from sqlalchemy import func, select

    from cases.core.db import get_engine, session_scope
    from cases.core.models import CaseEvent

    with session_scope(get_engine()) as session:
        return session.scalar(select(func.count()).where(CaseEvent.at == SWEEP)) or 0


def run(mode: str) -> dict[str, Any]:
    from cases.core.db import get_engine
    from cases.lifecycle import sweeper

    relay = 0.0
    began = time.time()  # wall clock: two processes' sweeps are timed from first to last
    if mode == "direct":
        started, cpu = time.perf_counter(), time.process_time()
        reports = sweeper.advance(get_engine(), now=SWEEP)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert not any(r.failed for r in reports), [r.failed for r in reports]
        done = sum(len(r.done) for r in reports)
    else:
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        from flows.advance import advance_cases
        from flows.deliver import deliver_email

        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            deliver_email(now=T0.isoformat(), limit=0)  # start the ephemeral server first
            started, cpu = time.perf_counter(), time.process_time()
            state = advance_cases(now=SWEEP.isoformat(), return_state=True)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert state.is_completed(), state.message
            done = _moved()
            # the next deliver-email run publishes the sweep's events and case artifacts
            started = time.perf_counter()
            deliver_email(now=SWEEP.isoformat(), limit=0)
            relay = time.perf_counter() - started
    return {
        "cases": _moved(),
        "done": done,
        "seconds": seconds,
        "span": [began, began + seconds],
        "cpu_seconds": cpu,
        "relay_seconds": relay,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


class Databases:
    """The set-up database and one copy per mode: SQLite files in ``work``, or databases
    on the PostgreSQL server of ``url``, created here and dropped by :meth:`drop`."""

    def __init__(self, url: str | None, work: Path) -> None:
        from sqlalchemy.engine import make_url

        self.work = work
        self.admin = None
        if url is None:
            self.base = f"sqlite:///{work / 'base.db'}"
            return
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise SystemExit(f"--database-url: PostgreSQL expected, got {parsed.drivername}")
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        from sqlalchemy import create_engine

        self.server = parsed
        self.prefix = f"caseward_bench_advance_{os.getpid()}"
        self.admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []
        self.base = self._create("base")

    def _create(self, name: str, template: str | None = None) -> str:
        from sqlalchemy import text

        assert self.admin is not None
        database = f"{self.prefix}_{name.replace('-', '_')}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"{clause}'))
        self.names.append(database)
        return self.server.set(database=database).render_as_string(hide_password=False)

    def copy(self, mode: str) -> str:
        """A fresh copy of the set-up database for ``mode``."""
        if self.admin is None:
            shutil.copy(self.work / "base.db", self.work / f"{mode}.db")
            return f"sqlite:///{self.work / mode}.db"
        return self._create(mode, template=self.names[0])

    def drop_copy(self, mode: str) -> None:
        """Drop the copy of ``mode`` (the next run of it gets a fresh one)."""
        if self.admin is None:
            for path in self.work.glob(f"{mode}.db*"):
                path.unlink()
            return
        from sqlalchemy import text

        database = f"{self.prefix}_{mode.replace('-', '_')}"
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        self.names.remove(database)

    @property
    def kind(self) -> str:
        return "sqlite" if self.admin is None else "postgresql"

    def drop(self) -> None:
        if self.admin is None:
            return
        from sqlalchemy import text

        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def _timed(mode: str, databases: Databases, work: Path) -> dict[str, Any]:
    """One run of ``mode`` in its own process, on a fresh copy of the set-up database."""
    # a Prefect home per run: every copy numbers its rows alike, and so its Prefect events
    home = Path(tempfile.mkdtemp(prefix="prefect-", dir=work))
    env = _env(databases.copy(mode), work, home)
    server = None
    if mode == "prefect-server":
        from caseward.serve import start_server

        os.environ["PREFECT_HOME"] = str(home)
        server = start_server("127.0.0.1", SERVER_PORT)
        env["PREFECT_API_URL"] = f"http://127.0.0.1:{SERVER_PORT}/api"
    load = os.getloadavg()[0]
    processes = 2 if mode == "two-processes" else 1
    try:
        running = [
            subprocess.Popen(
                [sys.executable, __file__, "--mode", "direct" if processes > 1 else mode],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        outs = [p.communicate()[0] for p in running]
        assert all(p.returncode == 0 for p in running), f"{mode} failed"
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        databases.drop_copy(mode)
    results: list[dict[str, Any]] = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    if processes == 1:
        return {**results[0], "load": load}
    # each case once, whichever process did it; the time from the first sweep's start to the
    # last one's end (interpreter start-up left out, as in the other modes)
    return {
        "cases": max(r["cases"] for r in results),
        "done": sum(r["done"] for r in results),
        "split": [r["done"] for r in results],
        "seconds": max(r["span"][1] for r in results) - min(r["span"][0] for r in results),
        "cpu_seconds": sum(r["cpu_seconds"] for r in results),
        "relay_seconds": 0.0,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="Due cases in the sweep.")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL server to run on (default: SQLite)."
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"Comma-separated, of {', '.join(MODES)}."
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="Runs of each mode, in turn; the best counts."
    )
    parser.add_argument("--mode", choices=["setup", *MODES], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "setup":
        setup(args.cases)
        return
    if args.mode:
        print(json.dumps(run(args.mode)))
        return
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"--modes: unknown {sorted(unknown)}; choose from {', '.join(MODES)}")
    work = Path(tempfile.mkdtemp(prefix="caseward-bench-"))
    databases = Databases(args.database_url, work)
    try:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--mode", "setup", "--cases", str(args.cases)],
            env=_env(databases.base, work, work / "prefect"),
            check=True,
        )
        print(f"setup: {args.cases:,} due cases in {time.perf_counter() - started:.0f}s")
        results: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):  # modes in turn, so a change of load hits all
            for mode in modes:
                r = _timed(mode, databases, work)
                assert r["cases"] == r["done"] == args.cases, f"{mode}: {r} of {args.cases}"
                relayed = f"  then relay {r['relay_seconds']:.2f}s" if r["relay_seconds"] else ""
                if "split" in r:
                    relayed += f"  split {' + '.join(f'{n:,}' for n in r['split'])}"
                print(
                    f"{databases.kind:10} {mode:14} {r['seconds']:7.2f}s  "
                    f"{r['cases'] / r['seconds']:6.0f} cases/s  CPU {r['cpu_seconds']:6.2f}s  "
                    f"peak RSS {r['peak_rss_mb']:4.0f} MB  load {r['load']:.1f}{relayed}"
                )
                if mode not in results or r["seconds"] < results[mode]["seconds"]:
                    results[mode] = r
        if args.repeat > 1:
            print(f"best of {args.repeat}:")
            for mode, r in results.items():
                print(
                    f"{databases.kind:10} {mode:14} {r['seconds']:7.2f}s  "
                    f"{r['cases'] / r['seconds']:6.0f} cases/s  CPU {r['cpu_seconds']:6.2f}s"
                )
        for mode in ("prefect", "prefect-server"):
            if mode in results and "direct" in results:
                overhead = results[mode]["seconds"] / results["direct"]["seconds"] - 1
                print(f"Prefect overhead ({mode}): {overhead:+.0%} of the direct run")
    finally:
        databases.drop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
