"""Statements as JSON lines: one object per line, in the Transparency Database's format.

A statement the database would refuse is not written; it is reported with its case and
field, and the others still are. A decision overturned on appeal keeps its statement (the
database has no withdrawal) and is reported as reversed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy.orm import Session

from cases.core.settings import Settings
from cases.statements.build import Decision, StatementBuilder, Subject, gather
from cases.statements.validate import Problem, problems


@dataclass(frozen=True)
class Built:
    """One statement and what is wrong with it (nothing, for a valid one)."""

    decision: Decision
    subject: Subject
    statement: dict[str, Any]
    problems: list[Problem]

    @property
    def puid(self) -> str:
        return str(self.statement["puid"])


@dataclass(frozen=True)
class Invalid:
    """A statement the database would refuse: where, and why."""

    case_id: int
    puid: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"case {self.case_id}: {self.field}: {self.message} (puid {self.puid})"


@dataclass(frozen=True)
class Reversed:
    """A decision overturned on appeal after its statements were made."""

    case_id: int
    reversed_on: str
    puids: list[str]

    def __str__(self) -> str:
        return (
            f"case {self.case_id}: decision reversed on {self.reversed_on}; its statements "
            f"stand in the database (no withdrawal): {', '.join(self.puids)}"
        )


@dataclass
class ExportReport:
    """What an export wrote and what it left out."""

    written: int = 0
    decisions: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    reversed: list[Reversed] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def invalid_of(built: Built) -> list[Invalid]:
    return [Invalid(built.decision.case_id, built.puid, p.field, p.message) for p in built.problems]


def built_statements(
    session: Session,
    *,
    settings: Settings,
    since: datetime | None = None,
    unsubmitted: bool = False,
    builder: StatementBuilder | None = None,
) -> Iterator[Built]:
    """Every statement of the decisions executed since ``since`` (with ``unsubmitted``, of
    those with a statement not yet submitted), checked."""
    builder = builder or StatementBuilder(settings)
    for decision, subjects in gather(session, since=since, unsubmitted=unsubmitted):
        facts = builder.facts(decision)
        for subject in subjects:
            statement = builder.statement(decision, subject, facts)
            yield Built(decision, subject, statement, problems(statement))


def export(
    session: Session, *, out: TextIO, settings: Settings, since: datetime | None = None
) -> ExportReport:
    """Write every valid statement to ``out``, one JSON object per line."""
    report = ExportReport()
    reversed_puids: dict[int, Reversed] = {}
    last_case: int | None = None
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for built in built_statements(session, settings=settings, since=since):
        decision = built.decision
        if decision.case_id != last_case:
            report.decisions += 1
            last_case = decision.case_id
        if built.problems:
            report.invalid.extend(invalid_of(built))
            continue
        out.write(dumps(built.statement) + "\n")
        report.written += 1
        if decision.reversed_at is not None:
            entry = reversed_puids.setdefault(
                decision.case_id,
                Reversed(decision.case_id, decision.reversed_at.date().isoformat(), []),
            )
            entry.puids.append(built.puid)
    report.reversed = list(reversed_puids.values())
    return report
