"""Submission to the Transparency Database: each statement once, in batches of at most 100.

The outbox's shape, for another external side effect:

* **Claim before the call.** A batch's rows move to ``sending`` (created if new, the puid
  stored for good) and commit before the request. Two runs never claim the same statement
  (``INSERT ... ON CONFLICT DO NOTHING`` and a conditional ``UPDATE``).
* **Record after the call.** ``submitted`` with the database's answer, ``rejected`` with
  its errors (sent again next run, after the catalogue is fixed), or back to ``pending``.
* **Never twice.** A ``submitted`` statement is never sent again. A claim whose answer was
  lost (a crash, a timeout) is checked with the existing-puid endpoint before anything is
  resent; a 422 naming puids that already exist is checked the same way and recorded as
  submitted.
* 429, 5xx and transport errors retry with exponential backoff (and Retry-After); when the
  tries run out the run stops and the batch waits for the next run. 401/403 stop at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Engine, select, update

from cases.core.db import insert_on_conflict, session_scope
from cases.core.enums import SubmissionStatus
from cases.core.models import StatementSubmission
from cases.core.settings import Settings
from cases.statements import vocabulary as v
from cases.statements.client import Answer, StatementsConfigError, TransparencyClient
from cases.statements.export import Built, Invalid, built_statements, invalid_of

S = SubmissionStatus

# The states of a submission and the moves between them (None: no row yet).
TRANSITIONS: dict[SubmissionStatus | None, frozenset[SubmissionStatus]] = {
    None: frozenset({S.SENDING}),
    S.PENDING: frozenset({S.SENDING}),
    S.REJECTED: frozenset({S.SENDING}),
    S.SENDING: frozenset({S.SUBMITTED, S.REJECTED, S.PENDING}),
    S.SUBMITTED: frozenset(),
}
CLAIMABLE = frozenset(s for s, targets in TRANSITIONS.items() if s and S.SENDING in targets)
KEPT = ("uuid", "permalink", "created_at", "platform_name")  # of the database's answer


class IllegalSubmissionMove(RuntimeError):
    """A submission was asked to move where its state table does not allow."""


@dataclass
class SubmitReport:
    """What one submission run did."""

    submitted: int = 0  # accepted in this run
    already: int = 0  # found in the database under their puid, recorded as submitted
    pending: int = 0  # left for the next run (the database was unavailable)
    requests: int = 0
    rejected: list[Invalid] = field(default_factory=list)  # refused by the database
    invalid: list[Invalid] = field(default_factory=list)  # refused by our checks: not sent
    stopped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def move(
    row: StatementSubmission,
    to: SubmissionStatus,
    *,
    now: datetime,
    response: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """The one write path of a submission's status: checked against :data:`TRANSITIONS`."""
    if to not in TRANSITIONS[row.status]:
        raise IllegalSubmissionMove(f"statement {row.puid}: {row.status} -> {to} is not a move")
    row.status = to
    if response is not None:
        row.response = response
    row.last_error = error
    if to is S.SUBMITTED:
        row.submitted_at = now


# what became of one statement: (puid, status, the database's answer, an error)
Outcome = tuple[str, SubmissionStatus, dict[str, Any] | None, str | None]


class Unavailable(Exception):
    """The database did not answer usefully within the allowed tries."""


@dataclass
class Run:
    """One submission run: the client, the policy for retries, and the report."""

    engine: Engine
    client: TransparencyClient
    settings: Settings
    now: datetime
    report: SubmitReport
    rng: random.Random = field(default_factory=random.Random)

    # --- calls, with retries ---------------------------------------------------------

    def call(self, request: Callable[[], Answer]) -> Answer:
        """``request`` until it is neither a 429, a 5xx nor a transport error; 401/403
        raise :class:`StatementsConfigError` at once."""
        statements = self.settings.statements
        reason = ""
        for attempt in range(1, statements.max_attempts + 1):
            try:
                answer = request()
            except httpx.TransportError as exc:
                answer, reason = None, f"{type(exc).__name__}: {exc}"
            self.report.requests += 1
            if answer is not None and answer.status in (401, 403):
                raise StatementsConfigError(
                    f"the Transparency Database refused the API token (HTTP {answer.status}): "
                    "check CASEWARD_STATEMENTS__API_TOKEN; nothing more was sent"
                )
            if answer is not None and answer.status != 429 and answer.status < 500:
                return answer
            if answer is not None:
                reason = f"HTTP {answer.status}"
            if attempt < statements.max_attempts:
                time.sleep(self.delay(attempt, answer.retry_after if answer else None))
        raise Unavailable(f"{reason} after {statements.max_attempts} tries")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential with equal jitter, at least Retry-After, at most the configured cap."""
        statements = self.settings.statements
        step = statements.backoff_base_seconds * 2.0 ** (attempt - 1)
        wait = max(step / 2 + self.rng.uniform(0, step / 2), retry_after or 0.0)
        return min(wait, statements.backoff_max_seconds)

    def existing(self, puid: str) -> dict[str, Any] | None:
        """The stored statement of ``puid``, or None when the database has none."""
        answer = self.call(lambda: self.client.existing(puid))
        if answer.status in (200, 302):
            return answer.body
        if answer.status == 404:
            return None
        raise Unavailable(f"existing-puid check of {puid}: HTTP {answer.status}")

    # --- the database side ---------------------------------------------------------

    def record(self, outcomes: Iterable[Outcome]) -> None:
        """Each (puid, status, response, error), one transaction for the group."""
        by_puid = {puid: (status, response, error) for puid, status, response, error in outcomes}
        if not by_puid:
            return
        with session_scope(self.engine) as session:
            rows = session.scalars(
                select(StatementSubmission).where(StatementSubmission.puid.in_(by_puid))
            )
            for row in rows:
                status, response, error = by_puid[row.puid]
                move(row, status, now=self.now, response=response, error=error)

    def claim(self, batch: Sequence[Built]) -> list[Built]:
        """Move ``batch`` to ``sending`` and commit; returns what this run now holds."""
        table = StatementSubmission.__table__
        puids = {b.puid: b for b in batch}
        with session_scope(self.engine) as session:
            fresh = [
                {
                    "action_id": b.subject.action_id,
                    "case_id": b.decision.case_id,
                    "puid": b.puid,
                    "status": S.SENDING.value,
                    "attempts": 1,
                    "created_at": self.now,
                    "claimed_at": self.now,
                }
                for b in batch
                if b.subject.submission is None
            ]
            held: set[str] = set()
            if fresh:
                inserted = session.execute(
                    insert_on_conflict(session, table)
                    .values(fresh)
                    .on_conflict_do_nothing()
                    .returning(table.c.puid)
                )
                held.update(inserted.scalars())
            again = [b.puid for b in batch if b.subject.submission in CLAIMABLE]
            if again:
                updated = session.execute(
                    update(StatementSubmission)
                    .where(
                        StatementSubmission.puid.in_(again),
                        StatementSubmission.status.in_(CLAIMABLE),
                    )
                    .values(
                        status=S.SENDING,
                        attempts=StatementSubmission.attempts + 1,
                        claimed_at=self.now,
                    )
                    .returning(StatementSubmission.puid)
                )
                held.update(updated.scalars())
        return [puids[p] for p in puids if p in held]

    # --- a batch -----------------------------------------------------------------------

    def send(self, batch: list[Built]) -> None:
        """Send a claimed batch until each statement is submitted, rejected or released."""
        remaining = {b.puid: b for b in batch}
        try:
            while remaining:
                sent = list(remaining.values())
                answer = self.call(partial(self.client.create, [b.statement for b in sent]))
                if answer.status in (200, 201):
                    self.accepted(sent, answer)
                    return
                settled = self.refused(sent, answer)
                for puid in settled:
                    remaining.pop(puid)
        except (Unavailable, StatementsConfigError) as exc:
            self.release(remaining.values(), str(exc))
            raise

    def accepted(self, sent: list[Built], answer: Answer) -> None:
        items = {str(i.get("puid")): i for i in answer.body.get("statements") or []}
        self.record((b.puid, S.SUBMITTED, _kept(items.get(b.puid, {})), None) for b in sent)
        self.report.submitted += len(sent)

    def refused(self, sent: list[Built], answer: Answer) -> set[str]:
        """Settle the statements a 422 names; returns their puids. A refusal that names
        none of them settles each: submitted if the database has it, else rejected."""
        if answer.status != 422:
            message = answer.body.get("message") or ""
            raise StatementsConfigError(
                f"the Transparency Database answered HTTP {answer.status} to a batch of "
                f"statements; check CASEWARD_STATEMENTS__API_URL. {message}".strip()
            )
        errors = answer.body.get("errors")
        errors = errors if isinstance(errors, dict) else {}
        named: dict[str, Any] = {}
        for key, fields in errors.items():
            index = key.removeprefix("statement_")
            if key.startswith("statement_") and index.isdigit() and int(index) < len(sent):
                named[sent[int(index)].puid] = fields
        check = {str(p) for p in errors.get("existing_puids") or []} & {b.puid for b in sent}
        if not named and not check:
            check = {b.puid for b in sent}
            message = str(answer.body.get("message") or "refused")
            named = {b.puid: {"statement": [message]} for b in sent}
        outcomes: list[Outcome] = []
        for built in sent:
            found = self.existing(built.puid) if built.puid in check else None
            if found is not None:
                outcomes.append((built.puid, S.SUBMITTED, {"existing": True} | _kept(found), None))
                self.report.already += 1
            elif built.puid in named or built.puid in check:
                why = named.get(built.puid) or {"puid": ["reported as existing, but not found"]}
                outcomes.append((built.puid, S.REJECTED, {"errors": why}, _first(why)))
                self.report.rejected.extend(_rejected(built, why))
        self.record(outcomes)
        return {puid for puid, *_ in outcomes}

    def release(self, batch: Iterable[Built], error: str) -> None:
        """Claims whose statements were not settled go back to ``pending``."""
        held = list(batch)
        self.record((b.puid, S.PENDING, None, error) for b in held)
        self.report.pending += len(held)

    # --- claims whose answer was lost ----------------------------------------------------

    def reconcile(self) -> None:
        """Claims older than the lease: submitted if the database has them, else pending."""
        lease = timedelta(seconds=self.settings.statements.claim_lease_seconds)
        with session_scope(self.engine) as session:
            stale = list(
                session.scalars(
                    select(StatementSubmission.puid).where(
                        StatementSubmission.status == S.SENDING,
                        StatementSubmission.claimed_at < self.now - lease,
                    )
                )
            )
        for puid in stale:
            found = self.existing(puid)
            if found is None:
                self.record([(puid, S.PENDING, None, "claim expired; not in the database")])
            else:
                self.record([(puid, S.SUBMITTED, {"existing": True} | _kept(found), None)])
                self.report.already += 1


def _kept(answer: dict[str, Any]) -> dict[str, Any]:
    """What is worth keeping of the database's answer about one statement."""
    return {key: answer[key] for key in KEPT if key in answer}


def _first(errors: Any) -> str:
    """The first error message of a field-to-messages mapping, on one line."""
    if isinstance(errors, dict):
        for field_name, messages in errors.items():
            text = messages[0] if isinstance(messages, list) and messages else messages
            return f"{field_name}: {text}"
    return str(errors)


def _rejected(built: Built, errors: Any) -> list[Invalid]:
    if not isinstance(errors, dict):
        return [Invalid(built.decision.case_id, built.puid, "statement", str(errors))]
    return [
        Invalid(
            built.decision.case_id,
            built.puid,
            str(name),
            str(messages[0] if isinstance(messages, list) and messages else messages),
        )
        for name, messages in errors.items()
    ]


def _batches(items: Iterable[Built], size: int) -> Iterator[list[Built]]:
    batch: list[Built] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def submit(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    client: TransparencyClient | None = None,
    batch_size: int = v.BATCH_MAX,
    limit: int | None = None,
    progress: Callable[[SubmitReport], None] | None = None,
) -> SubmitReport:
    """Send every statement not yet submitted (at most ``limit``), ``batch_size`` at a time.

    Statements our own checks refuse are reported and not sent. Raises
    :class:`StatementsConfigError` when the API is not configured or refuses the token.
    """
    report = SubmitReport()
    owned = client is None
    client = client or TransparencyClient.from_settings(settings.statements)
    run = Run(engine, client, settings, now, report)
    due: list[Built] = []
    tried = 0
    try:
        run.reconcile()
        with session_scope(engine) as session:
            for built in built_statements(session, settings=settings, unsubmitted=True):
                if built.subject.submission in (S.SUBMITTED, S.SENDING):
                    continue
                if built.problems:
                    report.invalid.extend(invalid_of(built))
                    continue
                due.append(built)
                if limit is not None and len(due) >= limit:
                    break
        for batch in _batches(due, min(batch_size, v.BATCH_MAX)):
            tried += len(batch)
            run.send(run.claim(batch))
            if progress is not None:
                progress(report)
    except Unavailable as exc:
        report.stopped = f"the Transparency Database is unavailable: {exc}"
        report.pending += len(due) - tried  # the batches never tried
    finally:
        if owned:
            client.close()
    return report
