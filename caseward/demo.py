"""``make demo``: a month of enforcement on a generated platform, through the real flows.

Embedded defaults only: SQLite and a mail folder under ``.caseward/demo``, Prefect in
ephemeral mode with its home in ``.caseward/demo/prefect`` (so a Prefect server started
later on that home shows every run and artifact). It runs in simulation mode
(``CASEWARD_SIMULATION=true``): a simulated clock passed to each flow as ``now``, typed lead
names, and e-mail only to the mail folder. Each run starts over with a new database and a new
Prefect home. Developers' answers are the same service calls the CLI makes, and the appeal goes
over HTTP through the developer portal, from the link of the e-mail it answers.
"""

from __future__ import annotations

import contextlib
import contextvars
import email
import email.policy
import io
import json
import os
import re
import shutil
import sys
import textwrap
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEMO = Path(".caseward") / "demo"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LEAD, REVIEWER = "lead-ann", "lead-bob"


def configure() -> None:
    """Point Caseward and Prefect at the demo's folders, before either reads its settings."""
    shutil.rmtree(DEMO, ignore_errors=True)  # a new database needs a new Prefect home:
    (DEMO / "prefect").mkdir(parents=True)  # relayed event ids derive from its row ids
    os.environ.update(
        {
            "CASEWARD_SIMULATION": "true",  # simulated time, typed leads, placeholder links
            "CASEWARD_LEADS": json.dumps([LEAD, REVIEWER]),
            "CASEWARD_DATABASE_URL": f"sqlite:///{(DEMO / 'caseward.db').resolve()}",
            "CASEWARD_EMAIL__BACKEND": "file",
            "CASEWARD_EMAIL__MAIL_DIR": str((DEMO / "mail").resolve()),
            "PREFECT_HOME": str((DEMO / "prefect").resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )
    for name in ("PREFECT_API_URL", "CASEWARD_NOW", "CASEWARD_ACTOR", "CASEWARD_CONFIG"):
        os.environ.pop(name, None)


def day(n: float) -> str:
    return (T0 + timedelta(days=n)).isoformat()


def say(text: str) -> None:
    print(f"  {text}", flush=True)


def in_background(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run a waiting flow on a thread that keeps this thread's Prefect settings."""
    box: list[Any] = []
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(lambda: box.append(target()),))
    thread.start()
    return thread, box


def decide_in_flow(flow: Any, case_id: int, kind: Any, at: str, decision: str, why: str) -> str:
    """Start a decision flow, wait for it to pause, answer it as a lead would in the UI."""
    from flows.hitl import resume_waiting, waiting_runs

    thread, box = in_background(
        lambda: flow(case_id, timeout_hours=1, poll_seconds=1, now=at, return_state=True)
    )
    while not waiting_runs(case_id, kind):
        time.sleep(0.2)
    time.sleep(0.5)
    resume_waiting(case_id, kind, decision, why, REVIEWER)
    thread.join()
    return str(box[0].name)


# what an enforcement did to the developer who ignored the e-mails, for the story
ENFORCED = {
    "restrict_app": "whose app was restricted",
    "revoke_token": "whose tokens were revoked",
    "ban_app": "whose app was banned",
    "suspend_account": "whose account was suspended",
}


def pick_cases() -> tuple[dict[str, int], str]:
    """The cases of the story: one complies, one ignores (no approval needed), one is banned;
    and what enforcement will do to the one who ignores."""
    from cases.core.db import get_engine, session_scope
    from cases.enforcement import planning
    from cases.lifecycle import service

    with session_scope(get_engine()) as session:
        cases = service.list_cases(session)
        plans = {c.id: planning.planned_actions(c) for c in cases}
        needs = {i: planning.needs_approval(plan) for i, plan in plans.items()}
        banned = next(c.id for c in cases if c.policy == "duplicate_apps" and needs[c.id])
        ignores = next(c.id for c in cases if not needs[c.id] and c.id != banned)
        complies = next(c.id for c in cases if c.id not in {banned, ignores})
    story = {"complies": complies, "ignores": ignores, "banned": banned}
    return story, ENFORCED[plans[ignores][0][0].value]


def cast(story: dict[str, int]) -> str:
    """``case 3 complies, case 1 ignores, case 2 is banned``."""
    roles = {"complies": "complies", "ignores": "ignores the e-mails", "banned": "is banned"}
    return ", ".join(f"case {case_id} {roles[role]}" for role, case_id in story.items())


def lead_runs(*argv: str, at: float) -> None:
    """A lead's ``caseward`` command on day ``at``, shown with its output."""
    from caseward.cli.main import main

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = main(["--now", day(at), "--actor", LEAD, *argv])
    shown = " ".join(f'"{a}"' if " " in a else a for a in argv)
    print(f"day {at:<2} {LEAD}: caseward {shown}")
    for line in output.getvalue().rstrip().splitlines():
        say(line)
    if code != 0:
        raise SystemExit(f"caseward {shown} failed ({code})")


def act(fn: Callable[..., Any], **kwargs: Any) -> None:
    """One developer's or lead's step, in its own unit of work (as the CLI does it)."""
    from cases.core.db import get_engine, session_scope

    with session_scope(get_engine()) as session:
        fn(session, **kwargs)


LINK = re.compile(r"https?://[^/\s]+(/case/[A-Za-z0-9_-]+)")


def personal_link(case_id: int) -> str:
    """The personal link (a path) in the latest e-mail of the case in the mail folder."""
    latest = sorted((DEMO / "mail").rglob(f"case-{case_id}-*.eml"))[-1]
    message = email.message_from_bytes(latest.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    found = LINK.search(body.get_content() if body is not None else "")
    if found is None:
        raise SystemExit(f"no personal link in {latest}")
    return found.group(1)


def appeal_in_portal(case_id: int, statement: str) -> None:
    """The developer opens the link of their latest e-mail and sends the appeal form, over
    HTTP through the portal (the app ``caseward web`` serves), at day 50."""
    with warnings.catch_warnings():  # Starlette's note on its test client's HTTP library
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from cases.core.settings import get_settings
    from caseward.web.app import create_app

    os.environ["CASEWARD_NOW"] = day(50)  # the portal's business time
    get_settings.cache_clear()
    try:
        with TestClient(create_app(get_settings())) as browser:
            path = personal_link(case_id)
            page = browser.get(path)
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
            if page.status_code != 200 or token is None:
                raise SystemExit(f"case {case_id}: the case page did not open ({page.status_code})")
            say(f"GET  /case/… (from the e-mail's link): {page.status_code}, the case page")
            sent = browser.post(
                f"{path}/appeal", data={"csrf_token": token.group(1), "statement": statement}
            )
            heading = re.search(r"<h1>(.*?)</h1>", sent.text)
            say(f"POST /case/…/appeal: {sent.status_code}, {heading.group(1) if heading else ''}")
            if sent.status_code != 200:
                raise SystemExit("the appeal was not recorded")
    finally:
        del os.environ["CASEWARD_NOW"]
        get_settings.cache_clear()


def play(apps: int) -> dict[str, int]:
    from cases.core.db import Base, get_engine
    from cases.detection.synthetic import generate
    from cases.lifecycle import operations
    from flows.advance import advance_cases
    from flows.approve_enforcement import approve_enforcement
    from flows.deliver import deliver_email
    from flows.detect import detect
    from flows.report import report
    from flows.review_appeal import review_appeal

    Base.metadata.create_all(get_engine())
    generate(DEMO / "snapshot", apps=apps, seed=7)
    print(
        "simulation mode (CASEWARD_SIMULATION=true): simulated days, typed lead names "
        f"({LEAD}, {REVIEWER}), e-mail to {DEMO / 'mail'} only"
    )
    print(f"day 0  generated a platform of ~{apps} apps; starting Prefect (ephemeral) ...")
    found = detect(snapshot=str(DEMO / "snapshot"), now=day(0))
    say(f"detect: {found['opened']} case(s) opened")
    lead_runs("cases", "confirm", "--status", "opened", "--reason", "evidence reviewed", at=0)
    story, enforced = pick_cases()
    say(f"the story follows {cast(story)}")
    advance_cases(now=day(0))
    deliver_email(now=day(0))
    say("advance + deliver: outreach e-mailed; the 14-day response window starts")

    print("day 3  a developer fixes the app; the lead verifies")
    act(
        operations.report_compliance,
        case_id=story["complies"],
        actor="developer",
        statement="Posting is now limited per user and needs a click.",
        now=T0 + timedelta(3),
    )
    act(
        operations.resolve,
        case_id=story["complies"],
        actor=LEAD,
        reason="verified: the changes are live",
        now=T0 + timedelta(4),
    )
    deliver_email(now=day(4))

    for n, what in ((15, "change requests"), (38, "reminders"), (46, "deadlines and enforcement")):
        advance_cases(now=day(n))
        deliver_email(now=day(n))
        print(f"day {n} advance + deliver: {what}")

    print("day 47 approve-enforcement flow pauses; a lead approves in its form")
    state = decide_in_flow(
        approve_enforcement,
        story["banned"],
        "approve-enforcement",
        day(47),
        "approve",
        "several copies of one app; a ban is proportionate",
    )
    say(f"approve-enforcement: {state}")
    advance_cases(now=day(47))
    deliver_email(now=day(47))

    print(f"day 50 the developer {enforced} appeals on the case page their e-mail links to")
    appeal_in_portal(story["ignores"], "We missed the e-mails; the changes are made now.")
    deliver_email(now=day(50))
    state = decide_in_flow(
        review_appeal,
        story["ignores"],
        "review-appeal",
        day(52),
        "overturn",
        "changes verified; access restored",
    )
    print(f"day 52 review-appeal flow pauses; {REVIEWER} overturns in its form: {state}")
    deliver_email(now=day(52))
    lead_runs("queue", at=52)
    report(now=day(52))
    return story


def summary(story: dict[str, int], seconds: float) -> None:
    from sqlalchemy import select

    from cases.core.db import get_engine, session_scope
    from cases.core.models import App, OutboxMessage
    from cases.lifecycle import service

    with session_scope(get_engine()) as session:
        cases = service.list_cases(session)
        by_status = Counter(c.status.value for c in cases)
        mails = Counter(session.scalars(select(OutboxMessage.template)))
        print(f"\nCaseward demo: {len(cases)} cases in {seconds:.0f}s")
        print(
            "  cases by final status: "
            + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items()))
        )
        for role, case_id in story.items():
            case = next(c for c in cases if c.id == case_id)
            apps = session.scalars(select(App.status).where(App.id.in_([a.id for a in case.apps])))
            ended = (
                f"outcome {case.outcome.value}"
                if case.outcome
                else f"appeal window open until {case.deadline:%Y-%m-%d}"
                if case.deadline
                else "no outcome yet"
            )
            print(
                f"  case {case_id} ({role}): {case.status.value}, {ended}, "
                f"apps {', '.join(sorted({a.value for a in apps}))}"
            )
    mail_dir = DEMO / "mail"
    files = sorted(mail_dir.rglob("*.eml"))
    print(f"  e-mails written: {len(files)} in {mail_dir}/")
    counts = ", ".join(f"{t} {n}" for t, n in sorted(mails.items()))
    print(textwrap.fill(counts, 78, initial_indent="    ", subsequent_indent="    "))
    print("  Browse the cases, e-mails and timelines with the CLI, at the story's last day:")
    print(
        f"    export CASEWARD_DATABASE_URL=sqlite:///{DEMO / 'caseward.db'} "
        "CASEWARD_SIMULATION=true"
    )
    print(f"    .venv/bin/caseward --now {day(52)} cases list   # then: cases show ID")
    print("  The developer portal: serve it, then open a developer's personal link:")
    print(f"    CASEWARD_NOW={day(53)} .venv/bin/caseward web   # with the export above")
    print(f"    http://127.0.0.1:8080{personal_link(story['banned'])}")
    print(f"    (the developer of case {story['banned']}: the ban, the evidence, the appeal form)")
    print("  Prefect UI (runs, case-<id> artifacts, daily-report):")
    print(
        f"    PREFECT_HOME={DEMO / 'prefect'} .venv/bin/prefect server start  # then open "
        "http://127.0.0.1:4200"
    )


def export_statements() -> None:
    """The demo's statements of reasons, as the EU's Transparency Database would get them."""
    from cases.core.db import get_engine, session_scope
    from cases.core.settings import get_settings
    from cases.statements.export import export

    target = DEMO / "statements.jsonl"
    with session_scope(get_engine()) as session, target.open("w", encoding="utf-8") as out:
        report = export(session, out=out, settings=get_settings())
    print(
        f"  statements of reasons (EU DSA): {report.written} for {report.decisions} "
        f"decision(s) in {target}"
        + "".join(f"\n    reversed: case {r.case_id} on {r.reversed_on}" for r in report.reversed)
        + "".join(f"\n    invalid: {i}" for i in report.invalid)
    )


def main(apps: int = 600) -> None:
    started = time.perf_counter()
    configure()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        story = play(apps)
    summary(story, time.perf_counter() - started)
    export_statements()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600)
