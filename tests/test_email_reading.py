"""What developers read: every template, every policy, every lifecycle step, from real findings.

A generated platform goes through the real detectors (with thresholds set to values that
appear nowhere else), and every case through the real lifecycle along four paths that
together send every template. Each e-mail is then read as its recipient would: no internal
value, no threshold, no other party's identifier, readable lines, and a deadline where one
is due.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import CaseStatus, EmailTemplate, Policy
from cases.core.models import Case, OutboxMessage
from cases.core.settings import get_settings
from cases.detection.run import run_detection
from cases.detection.synthetic import generate
from cases.email.render import format_date
from cases.enforcement import appeals
from cases.enforcement.catalog import get_catalog
from cases.enforcement.platform.registry import RegistryAdapter
from cases.lifecycle import escalation, extensions, operations, service, write
from tests.factories import deliver_pending

T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
LEAD, REVIEWER = "lead-ann", "lead-bob"

# thresholds set to values no e-mail has any other reason to show
THRESHOLDS = {
    "SPAM_REPORTS_PER_1000_POSTS": ("2.37", ["2.37", "2.4 "]),
    "SPAM_MIN_REPORTS": ("9", []),
    "USER_KEYS_MIN_ACCOUNTS": ("7", []),
    "CIRCUMVENTION_NEAR_LIMIT": ("0.83", ["0.83", "83%", "83 %"]),
    "DUPLICATE_NAME_SIMILARITY": ("0.87", ["0.87", "87%"]),
    "DUPLICATE_DESCRIPTION_SIMILARITY": ("0.91", ["0.91", "91%"]),
}
INTERNAL_WORDS = re.compile(
    r"threshold|minimum|min reports|near limit|similarity|score|party_id|developer_id|app_id",
    re.IGNORECASE,
)
ISO_WITH_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
DATED = {EmailTemplate.FEATURE_CHANGE_REQUEST, EmailTemplate.DEADLINE_REMINDER}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("platform") / "snapshot"
    generate(folder, apps=300, seed=11)
    return folder


@pytest.fixture
def platform(
    snapshot: Path, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The generated platform's cases, opened by the real detectors."""
    for name, (value, _) in THRESHOLDS.items():
        monkeypatch.setenv(f"CASEWARD_DETECTION__{name}", value)
    get_settings.cache_clear()
    with session_scope(sqlite_engine) as session:
        run_detection(
            session, snapshot, settings=get_settings().detection, actor="detector", now=T0
        )
    yield sqlite_engine


def at(day: float) -> datetime:
    return T0 + timedelta(days=day)


def _each(engine: Engine, step: Callable[..., object], **kwargs: object) -> None:
    with session_scope(engine) as session:
        ids = [c.id for c in service.list_cases(session)]
    for case_id in ids:
        with session_scope(engine) as session:
            step(session, case_id=case_id, **kwargs)


def _to_changes_requested(engine: Engine) -> None:
    """Confirm, outreach, change request (due day 45), both reminders, a request for more
    time declined, and then (the lead thinking again) the extension."""
    _each(engine, operations.confirm, actor=LEAD, reason="evidence reviewed", now=at(0))
    _each(engine, operations.send_outreach, now=at(0))
    deliver_pending(engine, now=at(0))
    _each(engine, operations.request_changes, actor=write.SYSTEM, reason="no answer", now=at(15))
    deliver_pending(engine, now=at(15))
    _each(engine, operations.send_reminder, now=at(38))
    _each(
        engine,
        extensions.request_extension,
        actor="developer:someone",
        statement="We need two more weeks to merge the apps.",
        now=at(39),
    )
    _each(
        engine,
        extensions.decline_extension,
        actor=LEAD,
        reason="the copies are still live",
        now=at(39.5),
    )
    _each(
        engine,
        operations.extend,
        actor=LEAD,
        reason="the developer is migrating to one app and asked for time",
        now=at(40),
    )
    _each(engine, operations.send_reminder, now=at(58))
    deliver_pending(engine, now=at(58))


def _enforce(engine: Engine, *, urgent: bool, overturn: bool) -> None:
    if urgent:
        _each(
            engine,
            escalation.approve_enforcement,
            actor=LEAD,
            reason="spam waves continue daily while we wait",
            now=at(58.5),  # before the extended deadline, after the last reminder
        )
    else:
        _each(engine, escalation.escalate, now=at(60))
        with session_scope(engine) as session:
            waiting = [
                c.id
                for c in service.list_cases(session)
                if escalation.awaiting_approval(session, case_id=c.id)
            ]
        for case_id in waiting:
            with session_scope(engine) as session:
                escalation.approve_enforcement(
                    session,
                    case_id=case_id,
                    actor=LEAD,
                    reason="copies of one service on linked accounts; a ban is proportionate",
                    now=at(60),
                )
    with session_scope(engine) as session:
        ids = [c.id for c in service.list_cases(session)]
    for case_id in ids:
        with session_scope(engine) as session:
            escalation.enforce(
                session, case_id=case_id, adapter=RegistryAdapter(session), now=at(61)
            )
    deliver_pending(engine, now=at(61))
    _each(engine, appeals.submit_appeal, actor="developer", statement="fixed now", now=at(62))
    for case_id in ids:
        with session_scope(engine) as session:
            appeals.decide_appeal(
                session,
                case_id=case_id,
                reviewer=REVIEWER,
                overturn=overturn,
                reason="the duplicates are deleted" if overturn else "the copies are still live",
                now=at(64),
            )


def _reject_then_resolve(engine: Engine) -> None:
    _each(engine, operations.report_compliance, actor="developer", statement="done", now=at(59))
    _each(
        engine,
        operations.reject_compliance,
        actor=LEAD,
        reason="two of the copies still answer requests",
        now=at(60),
    )
    deliver_pending(engine, now=at(60))
    _each(engine, operations.report_compliance, actor="developer", statement="done", now=at(65))
    _each(
        engine,
        operations.resolve,
        actor=LEAD,
        reason="verified: one app remains and the copies are deleted",
        now=at(66),
    )


def _decline(engine: Engine) -> None:
    _each(engine, escalation.escalate, now=at(60))
    _each(
        engine,
        escalation.decline_enforcement,
        actor=LEAD,
        reason="the developer deleted the copies the day after the deadline",
        now=at(61),
    )


COMMON = {
    EmailTemplate.OUTREACH,
    EmailTemplate.FEATURE_CHANGE_REQUEST,
    EmailTemplate.DEADLINE_REMINDER,
    EmailTemplate.EXTENSION_REQUESTED,
    EmailTemplate.EXTENSION_DECLINED,
    EmailTemplate.EXTENSION_GRANTED,
}
APPEALED = {EmailTemplate.APPEAL_RECEIVED}
PATHS: dict[str, tuple[Callable[[Engine], None], set[EmailTemplate]]] = {
    "enforced-overturned": (
        lambda e: _enforce(e, urgent=False, overturn=True),
        COMMON | APPEALED | {EmailTemplate.APPEAL_OVERTURNED},
    ),
    "urgent-upheld": (
        lambda e: _enforce(e, urgent=True, overturn=False),
        COMMON | APPEALED | {EmailTemplate.APPEAL_UPHELD},
    ),
    "rejected-resolved": (_reject_then_resolve, COMMON | {EmailTemplate.CASE_RESOLVED}),
    "declined": (_decline, COMMON | {EmailTemplate.ENFORCEMENT_DECLINED}),
}
NOTICES = {
    EmailTemplate.APP_RESTRICTED,
    EmailTemplate.TOKEN_REVOKED,
    EmailTemplate.APP_BANNED,
    EmailTemplate.ACCOUNT_SUSPENDED,
}


@dataclass
class Reader:
    """What one recipient may and may not find in their e-mail."""

    own: set[str]
    others: set[str]


def _readers(case: Case) -> dict[str, Reader]:
    readers = {}
    for developer in case.developers:
        own_apps = [a for a in case.apps if a.developer_id == developer.id]
        other_apps = [a for a in case.apps if a.developer_id != developer.id]
        others = {d for o in case.developers if o.id != developer.id for d in (o.id, o.handle)}
        others |= {o.email for o in case.developers if o.id != developer.id}
        others |= {x for a in other_apps for x in (a.id, a.name)}
        own = {developer.id, developer.handle} | {x for a in own_apps for x in (a.id, a.name)}
        readers[developer.id] = Reader(own=own, others=others - own)
    return readers


def _mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text) is not None


def problems(message: OutboxMessage, reader: Reader, deadline: datetime | None) -> list[str]:
    """Everything wrong with ``message`` for its reader, as readable lines."""
    found = []
    text, html, subject = message.text_body, message.html_body, message.subject
    for part, body in (("subject", subject), ("text", text), ("html", html)):
        if re.search(r"\bNone\b", body):
            found.append(f"{part}: 'None'")
        for repr_start in ("{'", "['", "{&#39;", "[&#39;"):
            if repr_start in body:
                found.append(f"{part}: Python repr {repr_start!r}")
        if INTERNAL_WORDS.search(body):
            found.append(f"{part}: internal word {INTERNAL_WORDS.search(body).group(0)!r}")  # type: ignore[union-attr]
        for _, shown in THRESHOLDS.values():
            found.extend(f"{part}: threshold {value!r}" for value in shown if value in body)
        leaked = [value for value in reader.others if _mentions(body, value)]
        found.extend(f"{part}: another party's {value!r}" for value in leaked)
    if ISO_WITH_TIME.search(text):
        found.append(f"text: ISO timestamp {ISO_WITH_TIME.search(text).group(0)!r}")  # type: ignore[union-attr]
    found.extend(
        f"text: line of {len(line)} characters" for line in text.splitlines() if len(line) > 100
    )
    if "\n\n\n" in text:
        found.append("text: two blank lines in a row")
    if message.template in DATED:
        assert deadline is not None
        day = format_date(deadline, "UTC")
        if day not in " ".join(text.split()) or day not in subject:  # a line may wrap in it
            found.append(f"no deadline date {day!r} in the subject and text")
    return found


def _deadline_of(message: OutboxMessage) -> datetime | None:
    """The deadline the e-mail must state: a change request's starts when it is sent; a
    reminder's is the case's (day 45, day 59 once extended, see ``_to_changes_requested``)."""
    if message.template == EmailTemplate.DEADLINE_REMINDER:
        return at(45) if message.created_at < at(40) else at(59)
    if message.template == EmailTemplate.FEATURE_CHANGE_REQUEST:
        sent = message.sent_at or message.created_at
        return sent + timedelta(days=get_settings().deadlines.change_days)
    return None


# what a decision's e-mail must quote: the lead's reason reaches the developer
REASONS = {
    EmailTemplate.EXTENSION_GRANTED: "the developer is migrating to one app and asked for time",
    EmailTemplate.CASE_RESOLVED: "verified: one app remains and the copies are deleted",
    EmailTemplate.ENFORCEMENT_DECLINED: "the developer deleted the copies the day after the",
    EmailTemplate.APPEAL_OVERTURNED: "the duplicates are deleted",
    EmailTemplate.APPEAL_UPHELD: "the copies are still live",
}
APPROVALS = {
    "urgent-upheld": "spam waves continue daily while we wait",
    "enforced-overturned": "copies of one service on linked accounts; a ban is proportionate",
}


def missing(message: OutboxMessage, case: Case, path: str) -> list[str]:
    """What ``message`` fails to tell: the reason of the decision it reports, and (for a
    request, a reminder, an extension and an enforcement) what must change."""
    text = " ".join(message.text_body.split())
    template = EmailTemplate(message.template)
    wanted = []
    if template in REASONS:
        wanted.append(REASONS[template])
    if template in NOTICES and (path != "enforced-overturned" or case.enforcement_approved_by):
        wanted.append(APPROVALS[path])
    if template in NOTICES | DATED | {EmailTemplate.EXTENSION_GRANTED}:
        wanted.append(get_catalog().entry(case.policy).required_changes[0])
    rejected = path == "rejected-resolved" and message.created_at > at(59)
    if template is EmailTemplate.FEATURE_CHANGE_REQUEST and rejected:
        wanted.append("two of the copies still answer requests")
    absent = [f"does not say {w!r}" for w in wanted if " ".join(w.split()) not in text]
    if template is EmailTemplate.ENFORCEMENT_DECLINED and "thank" in text.lower():
        absent.append("thanks a developer who ignored every e-mail")
    return absent


def test_the_paths_send_every_template() -> None:
    sent = set().union(*(templates for _, templates in PATHS.values()))
    assert sent | NOTICES == set(EmailTemplate)


@pytest.mark.parametrize("path", list(PATHS))
def test_every_e_mail_reads_well_and_shows_only_its_readers_own_data(
    platform: Engine, path: str
) -> None:
    drive, expected = PATHS[path]
    _to_changes_requested(platform)
    drive(platform)
    deliver_pending(platform, now=at(70))
    failures, seen = [], set()
    with session_scope(platform) as session:
        cases = {c.id: c for c in service.list_cases(session)}
        readers = {c.id: _readers(c) for c in cases.values()}
        messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        for message in messages:
            case = cases[message.case_id]
            seen.add((case.policy, EmailTemplate(message.template)))
            reader = readers[case.id][message.developer_id]
            found = problems(message, reader, _deadline_of(message))
            for problem in found + missing(message, case, path):
                failures.append(f"case {case.id} ({case.policy}) {message.template}: {problem}")
    kinds = sorted({f.split(": ", 1)[1] for f in failures})
    assert not failures, f"{len(failures)} problems, e.g.\n" + "\n".join(
        next(f for f in failures if f.endswith(kind)) for kind in kinds
    )
    multi_party = {c.policy for c in cases.values() if len(c.developers) > 1}
    assert {"duplicate_apps", "user_supplied_keys", "rate_limit_circumvention"} <= multi_party
    for policy in Policy:
        sent = {t for p, t in seen if p == policy}
        assert expected <= sent, (policy, expected - sent)
        if path.startswith(("enforced", "urgent")):
            assert sent & NOTICES, policy
    assert {c.status for c in cases.values()} <= {CaseStatus.CLOSED, CaseStatus.RESOLVED}
