"""Repeat offenders: strikes, and what the policy catalogue makes of them.

A *strike* is an enforcement that was applied and not overturned, counted against each
developer of its case from the day it was applied, for ``strikes.window_days`` (365 by
default). It is read from the enforcements themselves, never stored apart: an overturned
appeal reverses the enforcement (``reversed_at``), which removes its strike, and a strike
past the window has expired.

When a case is confirmed (:func:`repeat_offence`), each developer's strikes are recorded on
it (``prior_strikes``: what the e-mails tell each developer, "the second time ...") and its
developer with the most strikes sets its consequences from ``[[repeat_offenders]]`` in the
catalogue: a higher severity, a shorter change deadline, a lead's approval for any
enforcement. They are fixed at confirmation, as the developer is told then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, aliased

from cases.core.enums import Severity
from cases.core.models import Case, Enforcement, case_developers
from cases.core.schemas import StrikeRead
from cases.core.settings import get_settings
from cases.enforcement.catalog import get_catalog

SEVERITIES = list(Severity)  # mildest first


def window() -> timedelta:
    return timedelta(days=get_settings().strikes.window_days)


def _counting(now: datetime) -> ColumnElement[bool]:
    """An enforcement that is a strike at ``now``: applied within the window, not reversed."""
    return and_(
        Enforcement.executed_at.is_not(None),
        Enforcement.executed_at <= now,
        Enforcement.executed_at > now - window(),
        Enforcement.reversed_at.is_(None),
    )


def for_cases(
    session: Session, case_ids: Sequence[int], *, now: datetime
) -> dict[int, dict[str, int]]:
    """For each case of ``case_ids``: its developers' strikes at ``now`` (from their other
    cases), those with none left out. One query for a whole batch."""
    mine, theirs = aliased(case_developers), aliased(case_developers)
    rows = session.execute(
        select(mine.c.case_id, mine.c.developer_id, func.count())
        .join(theirs, theirs.c.developer_id == mine.c.developer_id)
        .join(Enforcement, Enforcement.case_id == theirs.c.case_id)
        .where(mine.c.case_id.in_(case_ids), theirs.c.case_id != mine.c.case_id, _counting(now))
        .group_by(mine.c.case_id, mine.c.developer_id)
    )
    found: dict[int, dict[str, int]] = {}
    for case_id, developer_id, count in rows:
        found.setdefault(case_id, {})[developer_id] = int(count)
    return found


def current(session: Session, developer_ids: Sequence[str], *, now: datetime) -> dict[str, int]:
    """Each developer's strikes at ``now`` (developers with none left out)."""
    rows = session.execute(
        select(case_developers.c.developer_id, func.count())
        .join(Enforcement, Enforcement.case_id == case_developers.c.case_id)
        .where(case_developers.c.developer_id.in_(developer_ids), _counting(now))
        .group_by(case_developers.c.developer_id)
    )
    return {developer_id: int(count) for developer_id, count in rows}


def history(session: Session, developer_id: str, *, now: datetime) -> list[StrikeRead]:
    """Every enforcement ever applied against ``developer_id``, newest first, each with
    whether it is a strike now, has expired or was overturned."""
    rows = session.execute(
        select(Case.id, Case.policy, Enforcement.executed_at, Enforcement.reversed_at)
        .join(Enforcement, Enforcement.case_id == Case.id)
        .join(case_developers, case_developers.c.case_id == Case.id)
        .where(case_developers.c.developer_id == developer_id)
        .where(Enforcement.executed_at.is_not(None), Enforcement.executed_at <= now)
        .order_by(Enforcement.executed_at.desc(), Case.id.desc())
    )
    strikes = []
    for case_id, policy, enforced_at, reversed_at in rows:
        assert enforced_at is not None  # selected so
        expires = enforced_at + window()
        status = (
            "overturned" if reversed_at is not None else "expired" if expires <= now else "active"
        )
        strikes.append(
            StrikeRead(
                case_id=case_id,
                policy=policy,
                enforced_at=enforced_at,
                expires_at=expires,
                status=status,
            )
        )
    return strikes


def raised(severity: Severity, levels: int) -> Severity:
    """``severity`` raised by ``levels``, at most high."""
    return SEVERITIES[min(SEVERITIES.index(severity) + levels, len(SEVERITIES) - 1)]


def repeat_offence(case: Case, prior: Mapping[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What confirming ``case`` records, given its developers' strikes: the case fields it
    sets (the strikes, and the consequences of the most) and, when there are consequences,
    the event data saying what they are."""
    strikes = {developer: n for developer, n in sorted(prior.items()) if n > 0}
    fields: dict[str, Any] = {"prior_strikes": strikes}
    most = max(strikes.values(), default=0)
    consequence = get_catalog().repeat_offence(most)
    if consequence is None:
        return fields, {}
    before = Severity(case.severity)  # a string until the case is read back
    severity = raised(before, consequence.raise_severity)
    if severity is not before:
        fields["severity"] = severity.value
    if consequence.change_days is not None:
        fields["change_days"] = consequence.change_days
    if consequence.lead_approval:
        fields["lead_approval"] = True
    return fields, {
        "repeat_offence": {
            "strikes": most,
            "severity": [before.value, severity.value],
            "change_days": consequence.change_days,
            "lead_approval": consequence.lead_approval,
        }
    }
