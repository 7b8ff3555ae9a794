"""A lead confirms N opened cases with one bulk command (goal: 10,000 in at most 10 s on SQLite).

The cases are opened as detection opens them (``service.open_cases``, one developer and one
app each). The same database is copied for each mode; each mode runs in its own process:

* ``direct``: ``cases.leads.bulk.decide`` (the domain's batched path, no CLI);
* ``cli``: ``caseward cases confirm --status opened --reason ... --yes --json`` end to end
  in a fresh process (interpreter start, imports and output included), as a lead runs it.

Each confirmation is checked afterwards: N ``confirm`` events and N confirmed cases.

    .venv/bin/python benchmarks/bench_bulk.py [--cases 10000] [--database sqlite|postgresql]
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
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DECIDED = T0 + timedelta(days=1)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MODES = ("direct", "cli")


def _env(url: str, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CASEWARD_DATABASE_URL": url,
        "CASEWARD_EMAIL__MAIL_DIR": str(work / "mail"),
        "CASEWARD_SIMULATION": "true",  # the decisions are taken at a simulated time
    }


def setup(n: int) -> None:
    """N opened cases, as detection opens them."""
    from cases.core.db import Base, get_engine, session_scope
    from cases.core.enums import Policy
    from cases.core.models import App, Developer
    from cases.core.schemas import CaseCreate
    from cases.lifecycle import service

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
        session.flush()
        service.open_cases(
            session,
            cases_in=[
                CaseCreate(
                    policy=Policy.SPAM,
                    app_ids=[f"a{i}"],
                    developer_ids=[f"d{i}"],
                    reason="spam reports",
                    evidence={"spam_reports_per_1000_posts": 7.5},
                    score=7.5,
                    source="detection",
                )
                for i in range(n)
            ],
            actor="detector",
            now=T0,
        )
    engine.dispose()  # the SQLite file is copied next: nothing may stay in its WAL


def run(mode: str, n: int) -> dict[str, float]:
    """Confirm every opened case; seconds, CPU seconds and peak RSS of the deciding process."""
    from sqlalchemy import func, select

    from cases.core.db import get_engine, session_scope
    from cases.core.models import Case, CaseEvent

    if mode == "direct":
        from cases.leads import bulk

        engine = get_engine()
        started, cpu = time.perf_counter(), time.process_time()
        with session_scope(engine) as session:
            ids = bulk.select_cases(session, decision="confirm", filters=bulk.CaseFilter()).ids
        outcome = bulk.decide(
            engine,
            "confirm",
            ids,
            inputs=bulk.DecisionInput(actor="lead-ann", now=DECIDED, reason="evidence reviewed"),
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert not outcome.refused and not outcome.stopped, outcome
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    else:
        argv = [
            *("--now", DECIDED.isoformat(), "--actor", "lead-ann"),
            *("cases", "confirm", "--status", "opened", "--reason", "evidence reviewed"),
            *("--yes", "--json"),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [str(Path(sys.executable).with_name("caseward")), *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert done.returncode == 0, done.stderr
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        peak = after.ru_maxrss / 1024
    with session_scope(get_engine()) as session:
        events = session.scalar(select(func.count()).where(CaseEvent.kind == "confirm"))
        confirmed = session.scalar(select(func.count()).where(Case.status == "confirmed"))
    assert events == confirmed == n, (events, confirmed)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak}


def _databases(kind: str, work: Path) -> tuple[str, list[str], list[str]]:
    """The set-up database's URL, one URL per mode (copies of it), and on PostgreSQL the
    names of the databases to create and drop."""
    if kind == "sqlite":
        return f"sqlite:///{work / 'base.db'}", [f"sqlite:///{work / m}.db" for m in MODES], []
    from sqlalchemy.engine import make_url

    names = [f"caseward_bench_bulk_{uuid.uuid4().hex[:8]}" for _ in ("base", *MODES)]
    urls = [make_url(PG_ADMIN).set(database=n).render_as_string(hide_password=False) for n in names]
    return urls[0], urls[1:], names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--mode", choices=["setup", *MODES])
    args = parser.parse_args()
    if args.mode == "setup":
        setup(args.cases)
        return
    if args.mode:
        print(json.dumps(run(args.mode, args.cases)))
        return
    work = Path(tempfile.mkdtemp(prefix="caseward-bench-bulk-"))
    base, urls, pg_names = _databases(args.database, work)
    admin = None
    if pg_names:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_names[0]}"'))
    try:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--mode", "setup", "--cases", str(args.cases)],
            env=_env(base, work),
            check=True,
        )
        print(f"setup: {args.cases:,} opened cases in {time.perf_counter() - started:.0f}s")
        load = os.getloadavg()[0]
        for mode, url in zip(MODES, urls, strict=True):
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}" '
                                      f'TEMPLATE "{pg_names[0]}"'))  # fmt: skip
            else:
                shutil.copy(work / "base.db", work / f"{mode}.db")
            out = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--cases", str(args.cases)],
                env=_env(url, work),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{args.database} {mode:6} {r['seconds']:6.2f}s  "
                f"{args.cases / r['seconds']:6.0f} cases/s  CPU {r['cpu_seconds']:.2f}s  "
                f"peak RSS {r['peak_rss_mb']:.0f} MB"
            )
        print(f"load average at the start: {load:.1f}")
    finally:
        if admin is not None:
            with admin.connect() as conn:
                for name in pg_names:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
