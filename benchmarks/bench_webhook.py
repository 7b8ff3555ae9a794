"""Benchmark: SendGrid Event Webhook batches of 1,000 events, signed, through the route.

    python benchmarks/bench_webhook.py [--batches 5] [--batch-size 1000] [--db URL]

Every batch is a real ``POST /webhooks/sendgrid`` through Starlette's TestClient (in process:
no network), signed with a key pair made here, so each figure includes the signature check,
JSON parsing and the one transaction that applies the batch. Three kinds of batch:

* ``delivered``: every event delivers the last e-mail of a different change request, so each
  one starts a deadline (a timeline event per event): the heaviest batch;
* ``mixed``: what SendGrid sends with the recommended event types ticked and a few untracked
  ones: 40 % processed, 40 % delivered, 10 % deferred, 5 % bounce, 3 % open, 2 % not ours;
* ``replay``: the ``delivered`` batches sent again: all duplicates, nothing changes.

Default database: a fresh SQLite file; ``--db`` takes an empty PostgreSQL database URL.
Times are wall clock and this process's CPU time (the app runs in it; with SQLite so does
the database, with PostgreSQL the server's work is left out of CPU, so compare wall clock
there); on a shared machine the CPU figure is the stable one. The load average is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.webhook_fixtures

import cases.core.models  # noqa: F401
from cases.core.db import Base, make_engine
from cases.core.enums import CaseStatus, OutboxStatus
from cases.core.models import (
    Case,
    CaseEvent,
    ChangeRequest,
    Developer,
    OutboxMessage,
    case_developers,
)
from cases.core.settings import get_settings
from tests.webhook_fixtures import SendGridSigner, body_of, sg_event, webhook_app

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SENT = NOW + timedelta(hours=1)
MIX = (("processed", 40), ("delivered", 40), ("deferred", 10), ("bounce", 5), ("open", 3))


def build(engine: Engine, n: int, prefix: str) -> list[str]:
    """``n`` cases whose change request (one e-mail each) SendGrid has accepted (so a
    delivery updates the case, its change request and its outbox row, and adds an event); their
    Message-IDs. Inserted in bulk: the benchmark measures the webhook, not the set-up."""
    developers, cases_, links, events, messages = [], [], [], [], []
    for i in range(n):
        developer = f"{prefix}-d{i}"
        developers.append(
            {"id": developer, "handle": developer, "email": f"{developer}@example.org"}
            | {"created_at": NOW}
        )
        cases_.append(
            {
                "policy": "spam",
                "reason": "Users reported spam from this app.",
                "evidence": {"spam_reports": 40},
                "opened_by": "bench",
                "created_at": NOW,
                "status_changed_at": NOW,
                "status": CaseStatus.CHANGES_REQUESTED,
                "event_count": 1,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(Developer), developers)
        case_ids = list(
            conn.scalars(insert(Case).returning(Case.id, sort_by_parameter_order=True), cases_)
        )
        for i, case_id in enumerate(case_ids):
            links.append({"case_id": case_id, "developer_id": f"{prefix}-d{i}"})
            events.append(
                {
                    "case_id": case_id,
                    "seq": 1,
                    "at": NOW,
                    "actor": "bench",
                    "kind": "request_changes",
                    "from_status": "outreach_sent",
                    "to_status": "changes_requested",
                    "reason": "bench",
                    "data": {},
                }
            )
        conn.execute(insert(case_developers), links)
        conn.execute(
            insert(ChangeRequest),
            [{"case_id": c, "changes": ["Add a CAPTCHA."], "requested_at": NOW} for c in case_ids],
        )
        event_ids = list(
            conn.scalars(
                insert(CaseEvent).returning(CaseEvent.id, sort_by_parameter_order=True), events
            )
        )
        for i, (case_id, event_id) in enumerate(zip(case_ids, event_ids, strict=True)):
            key = f"{prefix}-{i}"
            messages.append(
                {
                    "case_id": case_id,
                    "event_id": event_id,
                    "template": "feature_change_request",
                    "developer_id": f"{prefix}-d{i}",
                    "to_address": f"{prefix}-d{i}@example.org",
                    "subject": "Required changes",
                    "text_body": "text",
                    "html_body": "<p>html</p>",
                    "idempotency_key": key,
                    "message_id": f"<{key}.caseward@caseward.local>",
                    "status": OutboxStatus.SENT,
                    "attempts": 1,
                    "created_at": NOW,
                    "next_attempt_at": NOW,
                    "sent_at": SENT,
                }
            )
        conn.execute(insert(OutboxMessage), messages)
    return [m["message_id"] for m in messages]


def delivered_batches(ids: list[str], size: int) -> list[list[dict[str, Any]]]:
    at = SENT + timedelta(minutes=1)
    return [
        [sg_event("delivered", i, at) for i in ids[s : s + size]] for s in range(0, len(ids), size)
    ]


def mixed_batches(ids: list[str], size: int, batches: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(7)
    kinds = [kind for kind, share in MIX for _ in range(share)] + ["delivered-unknown"] * 2
    pool = iter(ids)
    out = []
    for _ in range(batches):
        batch = []
        for _ in range(size):
            kind = rng.choice(kinds)
            if kind == "delivered-unknown":
                batch.append(sg_event("delivered", f"<{rng.random()}@elsewhere>", SENT))
            else:
                batch.append(
                    sg_event(kind, next(pool), SENT + timedelta(seconds=rng.randint(1, 600)))
                )
        out.append(batch)
    return out


def run(
    client: TestClient, signer: SendGridSigner, batches: list[list[dict[str, Any]]]
) -> dict[str, float]:
    bodies = [body_of(b) for b in batches]
    events = sum(len(b) for b in batches)
    started, cpu = time.perf_counter(), time.process_time()
    slowest = 0.0
    for body in bodies:
        t0 = time.perf_counter()
        answer = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
        assert answer.status_code == 200, answer.text
        slowest = max(slowest, time.perf_counter() - t0)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "events": events,
        "wall": wall,
        "per_s": events / wall,
        "cpu": cpu,
        "per_cpu_s": events / cpu,
        "slowest_batch": slowest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--db", help="an empty PostgreSQL database URL (default: SQLite)")
    args = parser.parse_args()
    signer = SendGridSigner()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        os.environ.update(
            {
                "CASEWARD_SIMULATION": "true",
                "CASEWARD_NOW": (NOW + timedelta(days=1)).isoformat(),
                "CASEWARD_DATABASE_URL": url,
                "CASEWARD_EMAIL__SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
            }
        )
        get_settings.cache_clear()
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        n = args.batches * args.batch_size
        delivered_ids, mixed_ids = build(engine, n, "a"), build(engine, n, "b")
        plan = {
            "delivered": delivered_batches(delivered_ids, args.batch_size),
            "mixed": mixed_batches(mixed_ids, args.batch_size, args.batches),
        }
        plan["replay"] = plan["delivered"]
        load = os.getloadavg()[0]
        print(
            f"{engine.dialect.name}, {args.batches} batches of {args.batch_size}, load {load:.2f}"
        )
        with TestClient(webhook_app(engine, get_settings())) as client:
            for name, batches in plan.items():
                r = run(client, signer, batches)
                print(
                    f"  {name:<9} {r['events']:>6} events  {r['wall']:6.2f} s  "
                    f"{r['per_s']:6.0f} events/s  (CPU {r['cpu']:5.2f} s, "
                    f"{r['per_cpu_s']:6.0f} events per CPU second)  "
                    f"slowest batch {r['slowest_batch']:.2f} s"
                )
        print(f"load after: {os.getloadavg()[0]:.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()
