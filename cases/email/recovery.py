"""Recovery after an incident is one command: select by filter, count, then act row by row.

After a provider outage or a bad sender address, hundreds of e-mails may be ``failed`` or
``uncertain`` and their cases blocked. :func:`resolvable_emails` and :func:`blocked_cases`
select them by status, template, case and time; :func:`each_in_savepoint` applies a lead's
decision to each (:func:`cases.email.review.resolve_delivery`,
:func:`cases.lifecycle.notices.unblock_delivery`), so every row gets its own timeline event
as when it is settled alone, and a row that is refused is reported without undoing the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from cases.core.enums import CaseStatus, OutboxStatus
from cases.core.errors import CasewardError, InvalidInput
from cases.core.models import Case, OutboxMessage
from cases.email.review import RESOLVABLE

# when an e-mail was last tried: its claim (uncertain), else when its last try was due
LAST_TRIED = func.coalesce(OutboxMessage.claimed_at, OutboxMessage.next_attempt_at)


@dataclass(frozen=True)
class Selection:
    """What a recovery command acts on; every field left out selects everything."""

    template: str | None = None
    case_id: int | None = None
    since: datetime | None = None  # last tried at or after

    def emails(self) -> list[ColumnElement[bool]]:
        """Conditions on ``OutboxMessage`` rows."""
        conditions: list[ColumnElement[bool]] = []
        if self.template is not None:
            conditions.append(OutboxMessage.template == self.template)
        if self.case_id is not None:
            conditions.append(OutboxMessage.case_id == self.case_id)
        if self.since is not None:
            conditions.append(self.since <= LAST_TRIED)
        return conditions


def resolvable_emails(
    session: Session,
    *,
    decision: str,
    selection: Selection,
    status: OutboxStatus | None = None,
) -> list[int]:
    """Ids of the e-mails ``decision`` (``sent``/``resend``) applies to, oldest first."""
    allowed = RESOLVABLE[decision]
    if status is not None and status not in allowed:
        raise InvalidInput(
            f"--status {status}: --{decision} applies to "
            + " or ".join(sorted(s.value for s in allowed))
        )
    statuses = [status] if status is not None else sorted(allowed)
    query = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status.in_(statuses), *selection.emails())
        .order_by(OutboxMessage.id)
    )
    return list(session.scalars(query))


def blocked_cases(
    session: Session, *, selection: Selection, status: CaseStatus | None = None
) -> list[int]:
    """Ids of the cases whose escalation a failed notice blocks, oldest first; ``template``
    and ``since`` select by the e-mail that failed."""
    query = select(Case.id).where(Case.delivery_blocked.is_(True)).order_by(Case.id)
    if status is not None:
        query = query.where(Case.status == status)
    if selection.case_id is not None:
        query = query.where(Case.id == selection.case_id)
    email_rules = Selection(template=selection.template, since=selection.since).emails()
    if email_rules:
        failed = or_(
            OutboxMessage.status == OutboxStatus.FAILED,
            OutboxMessage.status == OutboxStatus.UNCERTAIN,
        )
        query = query.where(
            exists().where(and_(OutboxMessage.case_id == Case.id, failed, *email_rules))
        )
    return list(session.scalars(query))


@dataclass
class Outcome:
    """What a recovery did: the rows it acted on and the ones refused, with why."""

    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def each_in_savepoint(
    session: Session, ids: Sequence[int], action: Callable[[int], object]
) -> Outcome:
    """Apply ``action`` to each id in its own savepoint: a refused row changes nothing and
    is reported; the others go through."""
    outcome = Outcome()
    for row_id in ids:
        try:
            with session.begin_nested():
                action(row_id)
        except CasewardError as exc:
            outcome.refused[row_id] = str(exc)
        else:
            outcome.done.append(row_id)
    return outcome
