"""The fault-injection scenario: a synthetic platform driven through weeks of simulated time
while ``caseward advance``, ``caseward outbox send`` and ``caseward detect`` are killed with
SIGKILL at random moments, the e-mail provider and the platform API fail, and leads and
developers act. Used by tests/test_fault_injection.py.

Everything random is drawn from one seed: which runs are killed and after how long, which
provider and platform requests fail, what leads and developers do. (Where in its work a run
is when the kill lands also depends on the machine's speed.) The figures of a run are
collected in :class:`Figures`.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cases.core.db import session_scope
from cases.core.enums import ActionStatus, CaseStatus, OutboxStatus
from cases.core.errors import CasewardError
from cases.core.models import Case, CaseEvent, Enforcement, OutboxMessage, PlatformAction
from cases.email import review
from cases.enforcement import appeals
from cases.lifecycle import escalation, operations, service
from cases.lifecycle.states import TERMINAL
from tests.email_fixtures import FakeSendGrid
from tests.platform_fixtures import FakePlatform

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / ".caseward" / "fault-injection"  # each run's figures, by backend (JSON)
T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
TICK = timedelta(hours=8)
# a killed detect waits a tick (advance and outbox send start again at once): after three kills
# in a row its next run is spared, so a slow detect cannot stall the scenario
SPARED_AFTER_KILLS = {"detect": 3}
S = CaseStatus

# deadlines short enough that a few simulated weeks hold every step, appeals included
DEADLINES = {
    "CASEWARD_DEADLINES__OUTREACH_RESPONSE_DAYS": "3",
    "CASEWARD_DEADLINES__CHANGE_DAYS": "6",
    "CASEWARD_DEADLINES__REMINDER_OFFSETS_DAYS": "[2, 1]",
    "CASEWARD_DEADLINES__EXTENSION_DAYS": "2",
    "CASEWARD_DEADLINES__APPEAL_WINDOW_DAYS": "4",
}


@dataclass
class Figures:
    """What one scenario did and found."""

    backend: str
    seed: int
    simulated_days: float = 0.0
    ticks: int = 0
    runs: Counter[str] = field(default_factory=Counter)  # command runs started
    kills: Counter[str] = field(default_factory=Counter)  # ... killed with SIGKILL
    provider_faults: Counter[str] = field(default_factory=Counter)
    platform_faults: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)  # leads' and developers' acts
    refused_decisions: int = 0  # a guard said no (a deadline, an answer not recorded yet...)
    steps: dict[str, int] = field(default_factory=dict)  # case events by kind
    cases: dict[str, int] = field(default_factory=dict)  # by final status
    actions: dict[str, int] = field(default_factory=dict)  # platform actions by final status
    emails_accepted: int = 0  # accepted by the provider, repeats included
    emails_distinct: int = 0  # distinct Message-IDs accepted
    resent_after_lost_answer: int = 0  # Message-IDs accepted twice: an answer was lost
    linked_cases: int = 0
    notes_kept: int = 0
    violations: int = -1
    seconds: float = 0.0
    seconds_running: float = 0.0  # in caseward commands (the rest: leads, developers, checks)
    usual_seconds: dict[str, float] = field(default_factory=dict)  # a complete run, by command

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())

    def as_dict(self) -> dict[str, Any]:
        plain = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: dict(v) if isinstance(v, dict) else v for k, v in plain.items()} | {
            "total_kills": self.total_kills
        }

    def summary(self) -> str:
        return summary_line(self.as_dict())


def summary_line(figures: dict[str, Any]) -> str:
    """One line with every figure of a run (also read back from its JSON file)."""
    provider, platform = figures["provider_faults"], figures["platform_faults"]
    return (
        f"fault injection ({figures['backend']}, seed {figures['seed']}): "
        f"{figures['ticks']} ticks over {figures['simulated_days']:.0f} simulated days in "
        f"{figures['seconds']:.0f}s; {figures['total_kills']} SIGKILLs {figures['kills']} in "
        f"{sum(figures['runs'].values())} runs; "
        f"{sum(provider.values()) + sum(platform.values())} faults (provider {provider}, "
        f"platform {platform}); {sum(figures['steps'].values())} case steps; "
        f"{figures['emails_distinct']} e-mails ({figures['resent_after_lost_answer']} sent "
        f"again after a lost answer); cases {figures['cases']}; "
        f"{figures['violations']} violations"
    )


# --- the e-mail provider --------------------------------------------------------------------


@dataclass
class FaultySendGrid(FakeSendGrid):
    """The tests' SendGrid-compatible server, failing at random: 429, 500, a timeout (nothing
    accepted) or a 202 whose answer is lost (accepted, then the connection closes unanswered).
    """

    rng: random.Random = field(default_factory=random.Random)
    rates: dict[str, float] = field(default_factory=dict)
    client_timeout: float = 0.5
    faults: Counter[str] = field(default_factory=Counter)

    def draw(self) -> str:
        with self.lock:
            roll, edge = self.rng.random(), 0.0
            for fault, rate in self.rates.items():
                edge += rate
                if roll < edge:
                    self.faults[fault] += 1
                    return fault
            return "ok"

    def accepted(self) -> Counter[str]:
        """Message-ID -> how many times the provider accepted it."""
        with self.lock:
            return Counter(
                r["json"]["headers"]["Message-ID"] for r in self.requests if r["status"] == 202
            )

    def unanswered(self) -> set[str]:
        """Message-IDs accepted at least once without the answer reaching the sender in
        time: lost on purpose, or answered too slowly on a busy machine."""
        with self.lock:
            return {
                r["json"]["headers"]["Message-ID"]
                for r in self.requests
                if r["status"] == 202 and r.get("answered_in", 1e9) > self.client_timeout / 2
            }


def _faulty_handler(fake: FaultySendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            began = time.perf_counter()
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                body["headers"]["Message-ID"]
            except (OSError, ValueError, KeyError, TypeError):  # a sender killed mid-request
                self.close_connection = True
                return
            fault = fake.draw()
            status = {"429": 429, "500": 500, "timeout": 0}.get(fault, 202)
            record: dict[str, Any] = {"path": self.path, "status": status, "json": body}
            with fake.lock:
                fake.requests.append(record)
            if fault in ("timeout", "lost_202"):  # no answer: hang past the timeout, or drop
                if fault == "timeout":
                    threading.Event().wait(fake.client_timeout + 0.2)
                self.close_connection = True
                return
            payload = b"" if status == 202 else b'{"errors": [{"message": "injected"}]}'
            self.send_response(status)
            if status == 202:
                self.send_header("X-Message-Id", f"sg-{id(record)}")
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            record["answered_in"] = time.perf_counter() - began

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@dataclass
class Served:
    fake: FaultySendGrid
    server: ThreadingHTTPServer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietServer(ThreadingHTTPServer):
    """A killed client resets its connection: expected here, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def serve_sendgrid(rng: random.Random) -> Served:
    fake = FaultySendGrid(rng=rng)
    server = QuietServer(("127.0.0.1", 0), _faulty_handler(fake))
    fake.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Served(fake, server)


def platform_faults(rng: random.Random, rates: dict[str, Any], counts: Counter[str]) -> Any:
    """Random answers of the fake platform: 5xx, or an action done but its answer lost."""
    lock = threading.Lock()

    def answer(path: str, body: dict[str, Any]) -> Any:
        with lock:
            roll, edge = rng.random(), 0.0
            for fault, (rate, reply) in rates.items():
                edge += rate
                if roll < edge:
                    counts[fault] += 1
                    return reply
        return "ok"

    return answer


# --- the synthetic platform -------------------------------------------------------------------


def later_snapshot(first: Path, out: Path, *, newcomers: int) -> int:
    """``first`` plus, for ``newcomers`` services registered by many accounts, one more
    account registering the same service: parties found after those cases' outreach."""
    shutil.copytree(first, out)
    truth = json.loads((first / "ground_truth.json").read_text())
    groups = truth["violations"]["user_supplied_keys"][:newcomers]
    with (first / "apps.csv").open(newline="") as handle:
        apps = {row["app_id"]: row for row in csv.DictReader(handle)}
    developers, new_apps = [], []
    for n, group in enumerate(groups):
        template = apps[group[0]]
        dev_id, app_id = f"late-d{n}", f"late-a{n}"
        developers.append([dev_id, f"late{n}", f"late{n}@mail.example.org", "2026-12-20T00:00:00Z"])
        new_apps.append(
            [app_id, dev_id, f"{template['name']} Mirror", template["description"],
             template["website"], template["callback_urls"], "2026-12-21T00:00:00Z", ""]
        )  # fmt: skip
    for name, rows in (("developers", developers), ("apps", new_apps)):
        with (out / f"{name}.csv").open("a", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
    return len(groups)


# --- running caseward commands, and killing them --------------------------------------------


class Zygote:
    """The fork server of tests/fault_zygote.py, in its own process."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fault_zygote"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.count = 0

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def start(self, argv: list[str], env: dict[str, str]) -> tuple[int, Path]:
        self.count += 1
        out = self.folder / f"run-{self.count:05d}-{argv[0]}.log"
        return int(self._ask({"run": argv, "env": env, "out": str(out)})["pid"]), out

    def poll(self, pid: int) -> tuple[bool, int | None, int | None]:
        """Whether child ``pid`` has ended, with its exit code or the signal that ended it."""
        answer = self._ask({"poll": pid})
        return answer["ended"], answer["code"], answer["signal"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


@dataclass
class Run:
    argv: list[str]
    code: int | None
    killed: bool
    seconds: float
    log: Path


class Runner:
    """Starts commands together and SIGKILLs some after a random part of their usual time."""

    def __init__(self, zygote: Zygote, rng: random.Random, figures: Figures) -> None:
        self.zygote, self.rng, self.figures = zygote, rng, figures
        self.usual: dict[str, float] = {}  # seconds a complete run of each command takes
        self.kills_in_a_row: Counter[str] = Counter()

    def run(self, commands: list[list[str]], env: dict[str, str], kill: float) -> list[Run]:
        """Run ``commands`` at once; each is killed with probability ``kill``."""
        started = time.perf_counter()
        try:
            return self._run(commands, env, kill, started)
        finally:
            self.figures.seconds_running += time.perf_counter() - started
            self.figures.usual_seconds = dict(self.usual)

    def _run(
        self, commands: list[list[str]], env: dict[str, str], kill: float, started: float
    ) -> list[Run]:
        pending: dict[int, tuple[list[str], Path, float | None]] = {}
        for argv in commands:
            pid, log = self.zygote.start(argv, env)
            self.figures.runs[argv[0]] += 1
            usual = self.usual.get(argv[0], 0.4)
            # early moments are likelier: a run's usual time is often far longer than this one
            at = usual * self.rng.random() ** 2 if self.rng.random() < kill else None
            if self.kills_in_a_row[argv[0]] >= SPARED_AFTER_KILLS.get(argv[0], sys.maxsize):
                at = None
            pending[pid] = (argv, log, at)
        runs = []
        while pending:
            elapsed = time.perf_counter() - started
            for pid, (argv, log, at) in list(pending.items()):
                ended, code, sig = self.zygote.poll(pid)
                if not ended and at is not None and elapsed >= at:
                    os.kill(pid, signal.SIGKILL)
                    pending[pid] = (argv, log, None)
                    continue
                if not ended:
                    continue
                del pending[pid]
                killed = sig == signal.SIGKILL
                self.kills_in_a_row[argv[0]] = self.kills_in_a_row[argv[0]] + 1 if killed else 0
                if killed:
                    self.figures.kills[argv[0]] += 1
                elif sig is None:
                    self.usual[argv[0]] = 0.5 * self.usual.get(argv[0], elapsed) + 0.5 * elapsed
                runs.append(Run(argv, code, killed, elapsed, log))
            time.sleep(0.005)
        return runs


# --- what leads and developers do -------------------------------------------------------------


def _cases(session: Session) -> list[tuple[int, CaseStatus, bool]]:
    return [
        (case_id, CaseStatus(status), bool(extended))
        for case_id, status, extended in session.execute(
            select(Case.id, Case.status, Case.extension_granted).order_by(Case.id)
        )
    ]


class People:
    """Leads and developers, acting through the domain services as the CLI commands do."""

    def __init__(
        self, engine: Engine, rng: random.Random, figures: Figures, provider: FaultySendGrid
    ) -> None:
        self.engine, self.rng, self.figures, self.provider = engine, rng, figures, provider
        self.notes: dict[int, list[str]] = {}
        self.appealed: set[int] = set()

    def _do(self, name: str, act: Callable[[Session], object]) -> None:
        try:
            with session_scope(self.engine) as session:
                act(session)
        except CasewardError:
            self.figures.refused_decisions += 1
        else:
            self.figures.decisions[name] += 1

    def act(self, now: datetime) -> None:
        self.settle_email(now)
        with session_scope(self.engine) as session:
            cases = _cases(session)
            awaiting = {
                case_id
                for case_id, status, _ in cases
                if status is S.ENFORCEMENT_DUE
                and escalation.awaiting_approval(session, case_id=case_id)
            }
        for case_id, status, extended in cases:
            self._act_on(case_id, status, extended, case_id in awaiting, now)

    def _act_on(
        self, case_id: int, status: CaseStatus, extended: bool, awaiting: bool, now: datetime
    ) -> None:
        roll = self.rng.random()
        lead = {"actor": "lead-ann", "now": now, "case_id": case_id}
        developer = {"actor": "developer", "now": now, "case_id": case_id}
        if status is S.OPENED:
            if roll < 0.9:
                self._do("confirm", lambda s: operations.confirm(s, **lead, reason="checked"))
            else:
                self._do("dismiss", lambda s: operations.dismiss(s, **lead, reason="benign"))
        elif status is S.CONFIRMED and roll < 0.01:
            self._do(
                "approve_urgent",
                lambda s: escalation.approve_enforcement(s, **lead, reason="ongoing harm"),
            )
        elif status in (S.OUTREACH_SENT, S.CHANGES_REQUESTED):
            if roll < 0.015:
                self._do(
                    "report_compliance",
                    lambda s: operations.report_compliance(s, **developer, statement="fixed"),
                )
            elif roll < 0.03:
                self._do(
                    "acknowledge",
                    lambda s: operations.acknowledge(s, **developer, statement="on it"),
                )
            elif roll < 0.04 and status is S.CHANGES_REQUESTED and not extended:
                self._do("extend", lambda s: operations.extend(s, **lead, reason="asked nicely"))
            elif roll < 0.05:
                note = f"seen by hand on {now:%Y-%m-%d %H:%M}"
                self._do("add_evidence", lambda s: service.add_evidence(s, **lead, note=note))
                self.notes.setdefault(case_id, []).append(note)
        elif status is S.COMPLIANCE_REPORTED and roll < 0.5:
            if self.rng.random() < 0.7:
                self._do("resolve", lambda s: operations.resolve(s, **lead, reason="verified"))
            else:
                self._do(
                    "reject_compliance",
                    lambda s: operations.reject_compliance(s, **lead, reason="still spamming"),
                )
        elif awaiting and roll < 0.8:
            if roll < 0.7:
                self._do(
                    "approve_enforcement",
                    lambda s: escalation.approve_enforcement(s, **lead, reason="clear abuse"),
                )
            else:
                self._do(
                    "decline_enforcement",
                    lambda s: escalation.decline_enforcement(
                        s, **lead | {"actor": "lead-bob"}, reason="not worth a ban"
                    ),
                )
        elif status is S.ENFORCED and case_id not in self.appealed and roll < 0.2:
            self.appealed.add(case_id)
            self._do("appeal", lambda s: appeals.submit_appeal(s, **developer, statement="unfair"))
        elif status is S.APPEALED and roll < 0.6:
            overturn = self.rng.random() < 0.5
            self._do(
                "overturn" if overturn else "uphold",
                lambda s: appeals.decide_appeal(
                    s,
                    case_id=case_id,
                    reviewer="lead-bob",
                    overturn=overturn,
                    reason="reviewed",
                    now=now,
                ),
            )

    def settle_email(self, now: datetime) -> None:
        """A lead settles uncertain e-mail from the provider's activity feed (sent if it has
        it, else resend) and resends what failed."""
        accepted = self.provider.accepted()
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.message_id).where(
                    OutboxMessage.status.in_([OutboxStatus.UNCERTAIN, OutboxStatus.FAILED])
                )
            ).all()
        for outbox_id, status, message_id in rows:
            decision = (
                "sent" if status is OutboxStatus.UNCERTAIN and accepted[message_id] else "resend"
            )
            self._do(
                f"email_{decision}",
                lambda s, i=outbox_id, d=decision: review.resolve_delivery(
                    s, outbox_id=i, decision=d, actor="lead-ann", now=now
                ),
            )


# --- the scenario -------------------------------------------------------------------------------


def unsettled(engine: Engine) -> list[tuple[int, str, str]]:
    """E-mails not sent yet, and actions whose platform answer or notice is outstanding:
    (case id, what, status)."""
    with session_scope(engine) as session:
        emails = session.execute(
            select(OutboxMessage.case_id, OutboxMessage.template, OutboxMessage.status).where(
                OutboxMessage.status != OutboxStatus.SENT
            )
        ).all()
        actions = session.execute(
            select(Enforcement.case_id, PlatformAction.kind, PlatformAction.status)
            .select_from(PlatformAction)
            .join(Enforcement, PlatformAction.enforcement_id == Enforcement.id)
            .join(Case, Case.id == Enforcement.case_id)
            .where(
                PlatformAction.status.in_([ActionStatus.APPLYING, ActionStatus.REVERSING])
                | (
                    (PlatformAction.status == ActionStatus.APPLIED)
                    & PlatformAction.noticed_at.is_(None)
                )
                | ((PlatformAction.status == ActionStatus.PLANNED) & Case.status.in_(TERMINAL))
            )
        ).all()
    return [(c, str(w), str(s)) for c, w, s in [*emails, *actions]]


def tally(engine: Engine, figures: Figures, people: People, provider: FaultySendGrid) -> None:
    with session_scope(engine) as session:
        figures.steps = {
            kind: n
            for kind, n in session.execute(
                select(CaseEvent.kind, func.count()).group_by(CaseEvent.kind)
            )
        }
        figures.cases = {
            str(k): v
            for k, v in session.execute(select(Case.status, func.count()).group_by(Case.status))
        }
        figures.actions = {
            str(k): v
            for k, v in session.execute(
                select(PlatformAction.status, func.count()).group_by(PlatformAction.status)
            )
        }
        figures.linked_cases = sum(
            1
            for data in session.scalars(select(CaseEvent.data).where(CaseEvent.kind == "open"))
            if "linked_case_id" in data
        )
        kept = 0
        for case_id, notes in people.notes.items():
            evidence = service.get_or_raise(session, case_id=case_id).evidence
            recorded = [n["note"] for n in evidence.get("notes", [])]
            kept += sum(1 for note in notes if note in recorded)
        figures.notes_kept = kept
    accepted = provider.accepted()
    figures.emails_accepted = sum(accepted.values())
    figures.emails_distinct = len(accepted)
    figures.resent_after_lost_answer = sum(1 for n in accepted.values() if n > 1)


def ticks(days: float) -> Iterator[tuple[int, datetime]]:
    for n in range(int(days * timedelta(days=1) / TICK)):
        yield n, T0 + n * TICK


__all__ = [
    "DEADLINES",
    "FIGURES",
    "T0",
    "TICK",
    "FakePlatform",
    "Figures",
    "People",
    "Runner",
    "Served",
    "Zygote",
    "later_snapshot",
    "platform_faults",
    "serve_sendgrid",
    "summary_line",
    "tally",
    "ticks",
    "unsettled",
]
