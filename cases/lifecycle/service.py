"""Cases: lookup, opening, evidence, and the read shape of a case.

Every change goes through :func:`cases.lifecycle.write.record`; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session, selectinload

from cases.core.enums import CaseStatus, Severity
from cases.core.errors import GuardFailed, NotFound
from cases.core.models import App, Case, CaseEvent, Developer, case_apps, case_developers
from cases.core.schemas import CaseCreate, CaseRead
from cases.lifecycle import history
from cases.lifecycle.states import BEFORE_OUTREACH, Op
from cases.lifecycle.write import Change, event_data, record

ID_CHUNK = 5000  # ids per IN (...) list: far below every database's bound-parameter limit


def _case_query(*, lock: bool = False, parties: bool = True) -> Select[Case]:
    query = select(Case)
    if parties:
        query = query.options(selectinload(Case.apps), selectinload(Case.developers))
    return query.with_for_update(of=Case) if lock else query


def get_or_raise(session: Session, *, case_id: int, lock: bool = False) -> Case:
    """The case, its apps and developers loaded; locked for update when ``lock``."""
    case = session.scalars(_case_query(lock=lock).where(Case.id == case_id)).one_or_none()
    if case is None:
        raise NotFound(f"no case with id {case_id}")
    return case


def get_many(
    session: Session, *, case_ids: Sequence[int], lock: bool = False, parties: bool = True
) -> list[Case]:
    """Cases by id (missing ids skipped), in id order; one query for a whole batch. Without
    ``parties`` their apps and developers are not loaded (for steps that e-mail nobody)."""
    query = _case_query(lock=lock, parties=parties).where(Case.id.in_(case_ids))
    query = query.order_by(Case.id)
    return list(session.scalars(query))


def list_cases(
    session: Session,
    *,
    status: CaseStatus | None = None,
    policy: str | None = None,
    severity: Severity | None = None,
    assignee: str | None = None,
    case_ids: Sequence[int] | None = None,
    app_id: str | None = None,
    limit: int | None = None,
) -> list[Case]:
    """Cases matching every filter given, oldest first."""
    query = _case_query().order_by(Case.id)
    if status is not None:
        query = query.where(Case.status == status)
    if policy is not None:
        query = query.where(Case.policy == policy)
    if severity is not None:
        query = query.where(Case.severity == severity)
    if assignee is not None:
        query = query.where(Case.assignee == assignee)
    if case_ids is not None:
        query = query.where(Case.id.in_(case_ids))
    if app_id is not None:
        query = query.where(Case.apps.any(App.id == app_id))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def events(session: Session, *, case_id: int) -> list[CaseEvent]:
    """The case's timeline, oldest first."""
    query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    return list(session.scalars(query))


def _load_subjects(
    session: Session, *, app_ids: Sequence[str], developer_ids: Sequence[str]
) -> tuple[list[App], list[Developer]]:
    apps = list(session.scalars(select(App).where(App.id.in_(app_ids)).order_by(App.id)))
    developers = list(
        session.scalars(
            select(Developer).where(Developer.id.in_(developer_ids)).order_by(Developer.id)
        )
    )
    _refuse_unknown(
        missing_apps=set(app_ids) - {a.id for a in apps},
        missing_devs=set(developer_ids) - {d.id for d in developers},
    )
    return apps, developers


def _refuse_unknown(*, missing_apps: set[str], missing_devs: set[str]) -> None:
    if missing_apps or missing_devs:
        parts = [f"app {a}" for a in sorted(missing_apps)]
        parts += [f"developer {d}" for d in sorted(missing_devs)]
        raise NotFound("unknown " + ", ".join(parts))


def _require_subjects(session: Session, *, app_ids: set[str], developer_ids: set[str]) -> None:
    """Refuse ids of apps or developers that do not exist (checked in chunks of ids)."""
    found_apps: set[str] = set()
    found_devs: set[str] = set()
    for found, column, wanted in (
        (found_apps, App.id, sorted(app_ids)),
        (found_devs, Developer.id, sorted(developer_ids)),
    ):
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            found.update(session.scalars(select(column).where(column.in_(chunk))))
    _refuse_unknown(missing_apps=app_ids - found_apps, missing_devs=developer_ids - found_devs)


# Evidence only leads write (``cases add-evidence``): detection never replaces it.
LEAD_EVIDENCE = ("notes",)


def refreshed_evidence(current: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """A finding's evidence, with what leads recorded on the case kept beside it."""
    return {**found, **{key: current[key] for key in LEAD_EVIDENCE if key in current}}


def _link(linked_case_id: int | None) -> dict[str, int]:
    """Event data naming the case a case was split from (or split into)."""
    return {} if linked_case_id is None else {"linked_case_id": linked_case_id}


def _case_columns(case_in: CaseCreate, actor: str, now: datetime) -> dict[str, Any]:
    """What a new case is created with, before its first event applies the rest."""
    return {
        "policy": case_in.policy.value,
        "reason": case_in.reason,
        "source": case_in.source,
        "opened_by": actor,
        "created_at": now,
        "status_changed_at": now,
        "status": CaseStatus.OPENED,
    }


def _opening(
    case_in: CaseCreate, actor: str, now: datetime, linked_case_id: int | None = None
) -> Change:
    """The first event of a case: every projected field, its apps and developers, and the
    case it was split from, if any."""
    return Change(
        op=Op.OPEN,
        actor=actor,
        reason=case_in.reason,
        now=now,
        fields={
            "severity": case_in.severity.value,
            "score": case_in.score,
            "evidence": case_in.evidence,
            "assignee": None,
            "deadline": None,
            "next_reminder_at": None,
            "extension_granted": False,
            "delivery_blocked": False,
            "enforcement_approved_by": None,
            "urgent": False,
            "outcome": None,
            "prior_strikes": {},
            "change_days": None,
            "lead_approval": False,
        },
        data={
            "app_ids": case_in.app_ids,
            "developer_ids": case_in.developer_ids,
            **_link(linked_case_id),
        },
    )


def open_case(
    session: Session,
    *,
    case_in: CaseCreate,
    actor: str,
    now: datetime,
    linked_case_id: int | None = None,
) -> Case:
    """Open a case on existing apps and developers; its first event records everything.

    ``linked_case_id`` names the case whose finding these apps and accounts were found with
    after its outreach. Flushed, so the returned case has its id.
    """
    apps, developers = _load_subjects(
        session, app_ids=case_in.app_ids, developer_ids=case_in.developer_ids
    )
    case = Case(
        **_case_columns(case_in, actor, now), apps=apps, developers=developers, event_count=0
    )
    session.add(case)
    record(session, case=case, change=_opening(case_in, actor, now, linked_case_id))
    session.flush()
    return case


def open_cases(
    session: Session, *, cases_in: Sequence[CaseCreate], actor: str, now: datetime
) -> list[int]:
    """Open many cases with one INSERT per table; returns their ids, in order.

    Writes exactly the rows :func:`open_case` writes one by one (the case with the fields
    its first event projects, its apps and developers, the ``open`` event numbered 1), so
    history and replay cannot tell the two apart; detection opens thousands at once.
    """
    if not cases_in:
        return []
    _require_subjects(
        session,
        app_ids={a for c in cases_in for a in c.app_ids},
        developer_ids={d for c in cases_in for d in c.developer_ids},
    )
    session.flush()  # pending ORM work first, so ids follow it
    cases: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for case_in in cases_in:
        change = _opening(case_in, actor, now)
        payload = event_data(change.fields, change.data)
        fields = SimpleNamespace(**_case_columns(case_in, actor, now))
        history.apply(fields, to_status=CaseStatus.OPENED, at=now, changes=payload["set"])
        cases.append(vars(fields) | {"event_count": 1, "version": 1})
        events.append(
            {
                "seq": 1,
                "at": now,
                "actor": actor,
                "kind": Op.OPEN.value,
                "from_status": None,
                "to_status": CaseStatus.OPENED.value,
                "reason": case_in.reason,
                "data": payload,
            }
        )
    ids = list(
        session.scalars(insert(Case).returning(Case.id, sort_by_parameter_order=True), cases)
    )
    session.execute(
        insert(CaseEvent), [e | {"case_id": i} for e, i in zip(events, ids, strict=True)]
    )
    pairs = list(zip(ids, cases_in, strict=True))
    session.execute(
        insert(case_apps), [{"case_id": i, "app_id": a} for i, c in pairs for a in c.app_ids]
    )
    session.execute(
        insert(case_developers),
        [{"case_id": i, "developer_id": d} for i, c in pairs for d in c.developer_ids],
    )
    return ids


def refresh_evidence(
    session: Session,
    *,
    case_id: int,
    evidence: dict[str, Any],
    score: float | None,
    app_ids: Sequence[str],
    developer_ids: Sequence[str],
    actor: str,
    now: datetime,
    reason: str = "new evidence from detection",
    linked_case_id: int | None = None,
) -> Case:
    """Attach a newer finding to an open case: its evidence is refreshed beside what leads
    recorded, and new apps and accounts join it, but only before its outreach: a developer
    is only ever enforced against after their own notices and deadlines."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    new_apps = sorted(set(app_ids) - {a.id for a in case.apps})
    new_devs = sorted(set(developer_ids) - {d.id for d in case.developers})
    if (new_apps or new_devs) and case.status not in BEFORE_OUTREACH:
        raise GuardFailed(
            f"case {case.id} is {case.status.value}: apps and accounts cannot join it after "
            "its outreach; open a case of their own"
        )
    apps, developers = _load_subjects(session, app_ids=new_apps, developer_ids=new_devs)
    case.apps.extend(apps)
    case.developers.extend(developers)
    record(
        session,
        case=case,
        change=Change(
            op=Op.EVIDENCE_REFRESHED,
            actor=actor,
            reason=reason,
            now=now,
            fields={"evidence": refreshed_evidence(case.evidence, evidence), "score": score},
            data={
                "added_app_ids": new_apps,
                "added_developer_ids": new_devs,
                **_link(linked_case_id),
            },
        ),
    )
    return case


def add_evidence(session: Session, *, case_id: int, note: str, actor: str, now: datetime) -> Case:
    """A lead adds a written observation to a case's evidence (manual cases start with none)."""
    case = get_or_raise(session, case_id=case_id, lock=True)
    notes = [*case.evidence.get("notes", []), {"by": actor, "at": now.isoformat(), "note": note}]
    record(
        session,
        case=case,
        change=Change(
            op=Op.EVIDENCE_REFRESHED,
            actor=actor,
            reason=note,
            now=now,
            fields={"evidence": case.evidence | {"notes": notes}},
        ),
    )
    return case


def to_read(case: Case) -> CaseRead:
    return CaseRead.model_validate(
        {
            **{k: getattr(case, k) for k in CaseRead.model_fields if hasattr(case, k)},
            "app_ids": [a.id for a in case.apps],
            "developer_ids": [d.id for d in case.developers],
        }
    )
