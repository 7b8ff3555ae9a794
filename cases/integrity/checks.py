"""Each invariant as one function from a session to the violations it finds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from cases.core.enums import (
    ActionStatus,
    CaseStatus,
    EmailTemplate,
    OutboxStatus,
    TargetType,
)
from cases.core.models import (
    App,
    Case,
    CaseEvent,
    ChangeRequest,
    Developer,
    Enforcement,
    OutboxMessage,
    PlatformAction,
)
from cases.core.settings import Settings
from cases.enforcement import standing
from cases.enforcement.execution import OUTSTANDING
from cases.lifecycle import history
from cases.lifecycle.states import ENFORCEMENT_NOTICES, TERMINAL


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which check, which case (if any), what is wrong."""

    check: str
    case_id: int | None
    detail: str


@dataclass
class DoctorReport:
    """What the checks looked at and what they found."""

    checked: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "violations": [asdict(v) for v in self.violations]}


@dataclass(frozen=True)
class Context:
    session: Session
    now: datetime
    settings: Settings


Check = Callable[[Context], Iterator[Violation]]
BATCH = 1000


def _replay(ctx: Context) -> Iterator[Violation]:
    """Every case's fields equal the replay of its events; the events are numbered 1..n."""
    after = 0
    while True:
        cases = list(
            ctx.session.scalars(select(Case).where(Case.id > after).order_by(Case.id).limit(BATCH))
        )
        if not cases:
            return
        after = cases[-1].id
        events = ctx.session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id.in_([c.id for c in cases]))
            .order_by(CaseEvent.case_id, CaseEvent.seq)
        )
        logs = {case_id: list(rows) for case_id, rows in groupby(events, lambda e: e.case_id)}
        for case in cases:
            log = logs.get(case.id, [])
            if [e.seq for e in log] != list(range(1, len(log) + 1)) or case.event_count != len(log):
                yield Violation("replay", case.id, f"events are not numbered 1..{len(log)}")
            replayed, live = history.replay(log), history.Snapshot.of(case)
            differ = [k for k, v in asdict(replayed).items() if asdict(live)[k] != v]
            if differ:
                yield Violation(
                    "replay",
                    case.id,
                    "the case differs from the replay of its events in "
                    + ", ".join(
                        f"{k} ({getattr(live, k)} != {getattr(replayed, k)})" for k in differ
                    ),
                )
        ctx.session.expunge_all()


def _email_once(ctx: Context) -> Iterator[Violation]:
    """No notice is e-mailed twice: one e-mail per event, template and recipient, and one
    Message-ID per e-mail (a resend reuses it, so mail clients de-duplicate)."""
    for column in (
        (OutboxMessage.event_id, OutboxMessage.template, OutboxMessage.developer_id),
        (OutboxMessage.message_id,),
    ):
        query = (
            select(func.min(OutboxMessage.case_id), func.count(), *column)
            .group_by(*column)
            .having(func.count() > 1)
        )
        for case_id, count, *key in ctx.session.execute(query):
            yield Violation("email-once", case_id, f"{count} e-mails for {tuple(key)}")


# the developer an action falls on: the account itself, or the app's owner (see _actions)
DEVELOPER = func.coalesce(App.developer_id, PlatformAction.target_id)


def _actions(*columns: Any) -> Any:
    """``columns`` of every platform action, with its enforcement and (for an app) the app."""
    return (
        select(*columns)
        .select_from(PlatformAction)
        .join(Enforcement, PlatformAction.enforcement_id == Enforcement.id)
        .outerjoin(
            App,
            and_(PlatformAction.target_type == TargetType.APP, App.id == PlatformAction.target_id),
        )
    )


def _notice_before_enforcement(ctx: Context) -> Iterator[Violation]:
    """Everyone enforced against was sent a change request whose deadline had passed, unless
    a lead approved the enforcement as urgent."""
    applied_at = PlatformAction.applied_at
    requested = exists().where(
        OutboxMessage.case_id == Enforcement.case_id,
        OutboxMessage.developer_id == DEVELOPER,
        OutboxMessage.template == EmailTemplate.FEATURE_CHANGE_REQUEST,
        OutboxMessage.status == OutboxStatus.SENT,
        OutboxMessage.sent_at <= applied_at,
    )
    passed = exists().where(
        ChangeRequest.case_id == Enforcement.case_id,
        ChangeRequest.notified_at.is_not(None),
        ChangeRequest.due_at <= applied_at,
    )
    urgent = and_(Enforcement.urgent.is_(True), Enforcement.approved_by.is_not(None))
    query = _actions(
        Enforcement.case_id, PlatformAction.kind, PlatformAction.target_id, DEVELOPER
    ).where(applied_at.is_not(None), ~urgent, ~and_(requested, passed))
    for case_id, kind, target_id, dev in ctx.session.execute(query):
        yield Violation(
            "notice-before-enforcement",
            case_id,
            f"{kind} on {target_id} fell on {dev}, who had no delivered change request "
            "with a passed deadline",
        )


def _applied_noticed(ctx: Context) -> Iterator[Violation]:
    """Every action in force was noticed to the developer it falls on."""
    for kind, template in ENFORCEMENT_NOTICES.items():
        noticed = exists().where(
            OutboxMessage.case_id == Enforcement.case_id,
            OutboxMessage.developer_id == DEVELOPER,
            OutboxMessage.template == template,
        )
        query = (
            _actions(Enforcement.case_id, PlatformAction.target_id)
            .where(PlatformAction.kind == kind, PlatformAction.status == ActionStatus.APPLIED)
            .where(or_(PlatformAction.noticed_at.is_(None), ~noticed))
        )
        for case_id, target_id in ctx.session.execute(query):
            yield Violation(
                "applied-noticed",
                case_id,
                f"{kind} on {target_id} is in force without its {template} notice "
                "(caseward advance sends it)",
            )


def _standing(ctx: Context) -> Iterator[Violation]:
    """Every app's and account's status is what its actions in force imply, across cases."""
    implied = standing.all_in_force(ctx.session)
    for target_type, model in ((TargetType.APP, App), (TargetType.ACCOUNT, Developer)):
        ids = [t for (tt, t) in implied if tt is target_type]
        rows = ctx.session.execute(
            select(model.id, model.status).where(
                or_(model.status != standing.SEVERITY[target_type][0], model.id.in_(ids))
            )
        )
        for target_id, status in rows:
            expected = implied.get((target_type, target_id), standing.SEVERITY[target_type][0])
            if str(status) != expected:
                case_ids = ctx.session.scalars(
                    select(Enforcement.case_id)
                    .join(PlatformAction, PlatformAction.enforcement_id == Enforcement.id)
                    .where(PlatformAction.target_id == target_id)
                    .order_by(Enforcement.case_id)
                ).all()
                yield Violation(
                    "standing",
                    case_ids[-1] if case_ids else None,
                    f"{target_type} {target_id} is {status}; its actions in force imply "
                    f"{expected} (cases {', '.join(map(str, case_ids)) or 'none'})",
                )


def _claims(ctx: Context) -> Iterator[Violation]:
    """No e-mail or platform action is held claimed past its lease (the next delivery or
    advance run settles them; a claim that stays means nothing runs)."""
    email_cutoff = ctx.now - timedelta(seconds=ctx.settings.email.claim_lease_seconds)
    held = select(OutboxMessage.case_id, OutboxMessage.id, OutboxMessage.claimed_at).where(
        OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_at < email_cutoff
    )
    for case_id, outbox_id, claimed_at in ctx.session.execute(held):
        yield Violation(
            "claims", case_id, f"e-mail {outbox_id} sending since {claimed_at:%Y-%m-%d %H:%M}"
        )
    action_cutoff = ctx.now - timedelta(seconds=ctx.settings.platform.claim_lease_seconds)
    applying = (
        select(Enforcement.case_id, PlatformAction.kind, PlatformAction.target_id)
        .join(Enforcement, PlatformAction.enforcement_id == Enforcement.id)
        .where(
            PlatformAction.status.in_([ActionStatus.APPLYING, ActionStatus.REVERSING]),
            PlatformAction.claimed_at < action_cutoff,
        )
    )
    for case_id, kind, target_id in ctx.session.execute(applying):
        yield Violation("claims", case_id, f"{kind} on {target_id} claimed, its answer lost")


def _terminal_settled(ctx: Context) -> Iterator[Violation]:
    """No case in a terminal status has actions planned, being applied or being lifted."""
    query = (
        select(
            Case.id,
            Case.status,
            PlatformAction.kind,
            PlatformAction.target_id,
            PlatformAction.status,
        )
        .join(Enforcement, Enforcement.case_id == Case.id)
        .join(PlatformAction, PlatformAction.enforcement_id == Enforcement.id)
        .where(Case.status.in_([s.value for s in TERMINAL]))
        .where(PlatformAction.status.in_(sorted(OUTSTANDING)))
    )
    for case_id, status, kind, target_id, action_status in ctx.session.execute(query):
        yield Violation(
            "terminal-settled",
            case_id,
            f"the case is {CaseStatus(status).value} with {kind} on {target_id} still "
            f"{ActionStatus(action_status).value}",
        )


CHECKS: dict[str, tuple[Check, str]] = {
    "replay": (_replay, "each case equals the replay of its events"),
    "email-once": (_email_once, "no notice e-mailed twice"),
    "notice-before-enforcement": (
        _notice_before_enforcement,
        "everyone enforced against had a delivered change request and a passed deadline "
        "(or an urgent approval)",
    ),
    "applied-noticed": (_applied_noticed, "every action in force was noticed"),
    "standing": (_standing, "app and account statuses follow their actions in force"),
    "claims": (_claims, "no e-mail or action held claimed past its lease"),
    "terminal-settled": (_terminal_settled, "no closed case with unsettled actions"),
}


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def run_checks(session: Session, *, now: datetime, settings: Settings) -> DoctorReport:
    """Run every check (read only); the violations come sorted by case."""
    report = DoctorReport(
        checked={
            "cases": _count(session, Case),
            "events": _count(session, CaseEvent),
            "emails": _count(session, OutboxMessage),
            "actions": _count(session, PlatformAction),
        }
    )
    ctx = Context(session, now, settings)
    for check, _ in CHECKS.values():
        report.violations.extend(check(ctx))
    report.violations.sort(key=lambda v: (v.case_id or 0, v.check))
    return report


__all__ = ["CHECKS", "DoctorReport", "Violation", "run_checks"]
