"""Export of N statements of reasons (JSON lines, validated), in a fresh process.

The database holds executed decisions as the lifecycle leaves them (a confirmation event,
a delivered change request, the enforcement and its applied actions), written in bulk: 20%
of the statements are spam token revocations (one app), 30% rate-limit bans (two apps and
the account) and 50% duplicate-app bans (five apps). The export is timed twice: the domain
function alone (``cases.statements.export.export`` to a file), and ``caseward statements
export --out FILE`` end to end, process start included.

    .venv/bin/python benchmarks/bench_statements.py [--statements 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ENFORCED = T0 + timedelta(days=46)
# policy, severity, apps per case, actions, statements per case, share of the statements
MIX = (
    ("spam", "medium", 1, ("revoke_token",), 1, 0.2),
    ("rate_limit_circumvention", "high", 2, ("ban_app", "suspend_account"), 3, 0.3),
    ("duplicate_apps", "medium", 5, ("ban_app",), 5, 0.5),
)


def _evidence(policy: str, n: int) -> dict[str, float | int]:
    """Detector-like numbers that differ from case to case (so do the facts)."""
    if policy == "spam":
        reports, posts = 20 + n % 300, 4000 + (n * 37) % 20000
        return {
            "flagged_reports": reports,
            "posts": posts,
            "reports_per_1000_posts": round(1000 * reports / posts, 4),
            "threshold_per_1000_posts": 2.0,
        }
    if policy == "rate_limit_circumvention":
        return {
            "hours_over_limit": 3 + n % 40,
            "peak_times_limit": 1.2 + (n % 31) / 10,
            "handoffs_total": n % 5,
        }
    return {"links_total": 4 + n % 9}


def _rows(n_statements: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of the database, by table, ids assigned here."""
    rows: dict[str, list[dict[str, Any]]] = {
        t: []
        for t in (
            "developers",
            "apps",
            "cases",
            "case_apps",
            "case_developers",
            "case_events",
            "change_requests",
            "enforcements",
            "platform_actions",
        )
    }
    case_id = action_id = 0
    for policy, severity, n_apps, kinds, per_case, share in MIX:
        for _ in range(round(n_statements * share / per_case)):
            case_id += 1
            dev = f"d{case_id}"
            enforced = ENFORCED + timedelta(days=case_id % 90)  # the sweeps of three months
            notified, registered = enforced - timedelta(31), T0 - timedelta(days=90)
            apps = [f"a{case_id}-{k}" for k in range(n_apps)]
            rows["developers"].append(
                {
                    "id": dev,
                    "handle": f"dev{case_id}",
                    "email": f"{dev}@example.org",
                    "created_at": T0 - timedelta(days=400),
                }
            )
            rows["apps"] += [
                {"id": a, "developer_id": dev, "name": f"App {a}", "created_at": registered}
                for a in apps
            ]
            rows["cases"].append(
                {
                    "id": case_id,
                    "policy": policy,
                    "severity": severity,
                    "status": "enforced",
                    "reason": "found by the detector",
                    "source": "detection",
                    "evidence": _evidence(policy, case_id),
                    "opened_by": "detector",
                    "created_at": T0,
                    "status_changed_at": enforced,
                    "event_count": 1,
                }
            )
            rows["case_apps"] += [{"case_id": case_id, "app_id": a} for a in apps]
            rows["case_developers"].append({"case_id": case_id, "developer_id": dev})
            rows["case_events"].append(
                {
                    "case_id": case_id,
                    "seq": 1,
                    "at": T0,
                    "actor": "lead-ann",
                    "kind": "confirm",
                    "from_status": "opened",
                    "to_status": "confirmed",
                    "reason": "seen",
                    "data": {},
                }
            )
            rows["change_requests"].append(
                {
                    "case_id": case_id,
                    "changes": ["change"],
                    "requested_at": notified,
                    "notified_at": notified,
                    "due_at": enforced - timedelta(1),
                }
            )
            rows["enforcements"].append(
                {
                    "id": case_id,
                    "case_id": case_id,
                    "reason": "deadline passed",
                    "urgent": False,
                    "requires_approval": "ban_app" in kinds,
                    "approved_by": "lead-bob" if "ban_app" in kinds else None,
                    "created_at": enforced,
                    "executed_at": enforced,
                }
            )
            targets = [(k, "app", a) for k in kinds if k != "suspend_account" for a in apps]
            targets += [(k, "account", dev) for k in kinds if k == "suspend_account"]
            for kind, target_type, target in targets:
                action_id += 1
                rows["platform_actions"].append(
                    {
                        "id": action_id,
                        "enforcement_id": case_id,
                        "kind": kind,
                        "target_type": target_type,
                        "target_id": target,
                        "status": "applied",
                        "idempotency_key": f"k{action_id}",
                        "prior_status": "active",
                        "applied_at": enforced,
                    }
                )
    return rows


def setup(n_statements: int) -> int:
    """Write the decisions in bulk; returns how many statements they make."""
    from sqlalchemy import insert

    import cases.core.models  # noqa: F401  (registers every table)
    from cases.core.db import Base, get_engine, session_scope

    engine = get_engine()
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    rows = _rows(n_statements)
    tables = Base.metadata.tables
    with session_scope(engine) as session:
        for name, table_rows in rows.items():
            for start in range(0, len(table_rows), 5000):
                session.execute(insert(tables[name]), table_rows[start : start + 5000])
    return len(rows["platform_actions"])


def export_in_process(out: Path) -> dict[str, float]:
    from cases.core.db import get_engine, session_scope
    from cases.core.settings import get_settings
    from cases.statements.export import export

    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(get_engine()) as session, out.open("w", encoding="utf-8") as handle:
        report = export(session, out=handle, settings=get_settings())
    wall = time.perf_counter() - started
    return {
        "statements": report.written,
        "invalid": len(report.invalid),
        "wall_s": round(wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "per_s": round(report.written / wall),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def export_by_cli(out: Path, env: dict[str, str]) -> dict[str, Any]:
    """``caseward statements export`` in its own process; its own peak RSS (wait4)."""
    caseward = Path(sys.executable).parent / "caseward"
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(caseward), "statements", "export", "--out", str(out)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert process.stderr is not None
    report = process.stderr.read().strip()
    if status:
        sys.exit(f"caseward statements export failed: {report}")
    lines = sum(1 for _ in out.open(encoding="utf-8"))
    return {
        "statements": lines,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "per_s": round(lines / wall),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "report": report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    parser.add_argument("--child", choices=["setup", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "setup":
        print(json.dumps({"statements": setup(args.statements)}))
        return
    if args.child == "export":
        print(json.dumps(export_in_process(args.out)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-statements-") as work:
        url = args.database_url or f"sqlite:///{Path(work) / 'caseward.db'}"
        env = {
            "CASEWARD_PORTAL__SECRET_KEY": secrets.token_urlsafe(32),  # e-mails sign their links
            **os.environ,
            "CASEWARD_DATABASE_URL": url,
        }
        me = [sys.executable, __file__, "--statements", str(args.statements)]

        def child(*extra: str) -> dict[str, Any]:
            done = subprocess.run([*me, *extra], env=env, capture_output=True, text=True)
            if done.returncode:
                sys.exit(done.stderr)
            return dict(json.loads(done.stdout))

        started = time.perf_counter()
        made = child("--child", "setup")["statements"]
        took = time.perf_counter() - started
        print(f"setup: the decisions of {made:,} statements written in {took:.1f} s")
        domain = child("--child", "export", "--out", str(Path(work) / "domain.jsonl"))
        print("export() in process:", json.dumps(domain))
        cli = export_by_cli(Path(work) / "cli.jsonl", env)
        print("caseward statements export:", json.dumps(cli))
        print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
