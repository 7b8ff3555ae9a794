"""``caseward statements ...``: statements of reasons for the EU's DSA Transparency Database."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.text import Text
from sqlalchemy import select

from cases.core.clock import parse_instant
from cases.core.db import get_engine, unit_of_work
from cases.core.enums import SubmissionStatus
from cases.core.errors import InvalidInput
from cases.core.models import StatementSubmission
from cases.statements import submission
from cases.statements.export import ExportReport, export
from caseward.cli.common import STATE, emit, err, fmt_time, settings, table

statements_app = typer.Typer(
    help="Statements of reasons (EU Digital Services Act) for the Transparency Database."
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = parse_instant(text)
    except ValueError as exc:
        raise InvalidInput(f"--since: {text!r} is not a date (YYYY-MM-DD) or an instant") from exc
    return value.astimezone(UTC)


def _export_to(out: str, since: datetime | None) -> ExportReport:
    """Export to stdout, or to ``out`` through a temporary file renamed at the end."""
    if out == "-":
        return _export(sys.stdout, since)
    target = Path(out)
    if not target.parent.is_dir():
        raise InvalidInput(f"--out: the folder {target.parent} does not exist")
    fd, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            report = _export(handle, since)
        os.replace(part, target)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    return report


def _export(stream: TextIO, since: datetime | None) -> ExportReport:
    with unit_of_work() as session:
        return export(session, out=stream, settings=settings(), since=since)


@statements_app.command("export")
def export_cmd(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only decisions taken on or after this date (YYYY-MM-DD)."),
    ] = None,
    out: Annotated[
        str, typer.Option("--out", help="Write the JSON lines to FILE; '-' is stdout.")
    ] = "-",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (on stderr).")
    ] = False,
) -> int:
    """One statement per line, in the Transparency Database's format.

    Statements the database would refuse are reported on stderr with their case and field,
    and the command exits 1; the others are still written. Decisions overturned on appeal
    are reported as reversed (their statements stand: the database has no withdrawal).
    """
    report = _export_to(out, _since(since))
    where = "stdout" if out == "-" else out
    if as_json:
        sys.stderr.write(json.dumps(report.as_dict(), default=str) + "\n")
    else:
        err.print(
            Text(
                f"exported {report.written} statement(s) of {report.decisions} decision(s) "
                f"to {where}"
                + "".join(f"\n  invalid: {i}" for i in report.invalid)
                + "".join(f"\n  reversed: {r}" for r in report.reversed)
            )
        )
    return 1 if report.invalid else 0


@statements_app.command("submit")
def submit_cmd(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Send at most this many statements.")
    ] = None,
    as_json: Json = False,
) -> int:
    """Send the statements not yet submitted to CASEWARD_STATEMENTS__API_URL, 100 a request.

    A statement is never sent twice; one the database already holds under its puid is
    recorded as submitted. Exits 1 when a statement was refused or the database was
    unavailable (those are sent again on the next run).
    """

    def progress(report: submission.SubmitReport) -> None:
        if not as_json:
            err.print(Text(f"  ... {report.submitted} submitted, {report.already} already there"))

    report = submission.submit(
        get_engine(), settings=settings(), now=STATE.now(), limit=limit, progress=progress
    )
    emit(
        report.as_dict(),
        as_json,
        lambda: Text(
            f"submitted {report.submitted}, already in the database {report.already}, "
            f"rejected {len(report.rejected)}, not sent (invalid) {len(report.invalid)}, "
            f"left pending {report.pending}; {report.requests} request(s)"
            + (f"\nstopped: {report.stopped}" if report.stopped else "")
            + "".join(f"\n  rejected: {i}" for i in report.rejected)
            + "".join(f"\n  invalid: {i}" for i in report.invalid)
        ),
    )
    return 1 if report.stopped or report.rejected or report.invalid else 0


def _row(row: StatementSubmission) -> dict[str, Any]:
    return {
        "puid": row.puid,
        "case_id": row.case_id,
        "status": str(row.status),
        "attempts": row.attempts,
        "submitted_at": row.submitted_at,
        "uuid": (row.response or {}).get("uuid"),
        "last_error": row.last_error,
    }


@statements_app.command("list")
def list_cmd(
    status: Annotated[
        SubmissionStatus | None, typer.Option("--status", help="Only statements in this status.")
    ] = None,
    case_id: Annotated[int | None, typer.Option("--case", help="Only this case.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 200,
    as_json: Json = False,
) -> None:
    """Statements claimed for submission, newest first, with the database's answer."""
    query = select(StatementSubmission).order_by(StatementSubmission.id.desc()).limit(limit)
    if status is not None:
        query = query.where(StatementSubmission.status == status)
    if case_id is not None:
        query = query.where(StatementSubmission.case_id == case_id)
    with unit_of_work() as session:
        rows = [_row(r) for r in session.scalars(query)]
    emit(
        rows,
        as_json,
        lambda: table(
            f"{len(rows)} statement(s)",
            ["puid", "case", "status", "tries", "submitted", "uuid", "error"],
            [
                [
                    r["puid"],
                    r["case_id"],
                    r["status"],
                    r["attempts"],
                    fmt_time(r["submitted_at"]) if r["submitted_at"] else "",
                    r["uuid"] or "",
                    (r["last_error"] or "")[:60],
                ]
                for r in rows
            ],
        ),
    )


def register(app: typer.Typer) -> None:
    """Add ``statements`` to the root app."""
    app.add_typer(statements_app, name="statements")
