"""``caseward import``, ``caseward detect`` and ``caseward demo-data``: snapshots to cases."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from cases.core.db import unit_of_work
from cases.core.enums import FindingAction, Policy
from cases.detection.finding import Finding
from cases.detection.problems import ImportFailed
from cases.detection.registry_import import ImportSummary, import_registry
from cases.detection.run import (
    banned_app_ids,
    detect_findings,
    load_snapshot,
    registry_import_alongside,
    triage_findings,
)
from cases.detection.snapshot import Progress, Snapshot
from cases.detection.to_cases import sync_findings
from cases.leads.rules import TriageReport
from cases.lifecycle.write import DETECTOR
from caseward.cli.case_views import columns, hanging
from caseward.cli.common import STATE, emit, err, out, print_json, settings, spinner, table

# case ids listed per policy after detect (--json lists every finding)
MAX_CASE_IDS = 30

DataDir = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Snapshot folder: CSV or Parquet files as docs/platform-data.md describes.",
        show_default=False,
        exists=True,
        file_okay=False,
        dir_okay=True,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class FileFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


def open_checked(data: Path, progress: Progress) -> Snapshot:
    """Validate the snapshot; on failure list every problem on stderr, then raise."""
    try:
        return load_snapshot(data, settings().detection, progress)
    except ImportFailed as exc:
        for problem in exc.problems:
            err.print(Text(str(problem)))
        if exc.total > len(exc.problems):
            err.print(Text(f"... and {exc.total - len(exc.problems)} more problem(s)"))
        raise


def _summary_rows(summary: ImportSummary) -> list[list[Any]]:
    def changed(count: int) -> int | str:
        return "?" if count < 0 else count

    return [
        [
            "developers",
            summary.developers,
            summary.developers_new,
            changed(summary.developers_changed),
        ],
        ["apps", summary.apps, summary.apps_new, changed(summary.apps_changed)],
    ]


def import_snapshot(data: DataDir, as_json: Json = False) -> None:
    """Validate a snapshot and update the registry (new apps, changed names; never status)."""
    with (
        spinner("importing") as progress,
        open_checked(data, progress) as snapshot,
        unit_of_work() as session,
    ):
        summary = import_registry(session, snapshot, progress=progress)
    emit(
        summary.__dict__,
        as_json,
        lambda: table(
            "registry import", ["table", "rows", "new", "changed"], _summary_rows(summary)
        ),
    )


def detect(data: DataDir, as_json: Json = False) -> None:
    """Import a snapshot, run the four detectors and open or refresh cases.

    The snapshot's files and columns: docs/platform-data.md in the Caseward repository.
    """
    detection = settings().detection
    actor, now = DETECTOR, STATE.now()  # detection opens the cases, whoever runs it
    started = time.perf_counter()
    with spinner("detecting") as progress, open_checked(data, progress) as snapshot:
        with unit_of_work() as session:
            banned = banned_app_ids(session)
        with unit_of_work() as session:
            with registry_import_alongside(session, snapshot, progress=progress) as importing:
                findings = detect_findings(snapshot, detection, banned=banned, progress=progress)
            summary, _seconds = importing.result()
            synced = sync_findings(
                session, findings, settings=detection, actor=actor, now=now, progress=progress
            )
            triaged = triage_findings(session, synced, now=now)
    elapsed = time.perf_counter() - started
    if as_json:
        print_json([f.to_contract() for f in synced])
        return
    out.print(table("registry", ["table", "rows", "new", "changed"], _summary_rows(summary)))
    out.print(_policy_lines(synced))
    if triaged.enabled:
        out.print(triage_line(triaged))
    out.print(f"{len(synced)} finding(s) in {elapsed:.1f}s")


def triage_line(triaged: TriageReport) -> Text:
    """What the triage rules did after detection, in one sentence."""
    by_rule = ", ".join(f"{name} {n}" for name, n in sorted(triaged.counts().items()))
    text = f"triage rules decided {sum(triaged.counts().values())} case(s)"
    text += f" ({by_rule})" if by_rule else ""
    text += f"; {len(triaged.waiting)} wait for a lead"
    text += f"; {len(triaged.refused)} refused" if triaged.refused else ""
    return Text(text)


def _some(case_ids: Sequence[int | None]) -> str:
    """The first case ids, and how many more."""
    more = len(case_ids) - MAX_CASE_IDS
    return " ".join(map(str, case_ids[:MAX_CASE_IDS])) + (f" … and {more} more" if more > 0 else "")


def _policy_lines(findings: list[Finding]) -> Text:
    """Per policy: findings, what they did to cases, apps, severities; then the case ids."""
    header = ["policy", "found", "new", "refreshed", "unchanged", "apps", "high/med/low"]
    rows, ids = [], []
    dismissed = [f for f in findings if f.action is FindingAction.DISMISSED]
    for policy in Policy:
        mine = [f for f in findings if f.policy == policy]
        actions = Counter(f.action for f in mine)
        severities = Counter(f.severity.value for f in mine)
        rows.append(
            [
                policy.value,
                str(len(mine)),
                str(actions[FindingAction.OPENED]),
                str(actions[FindingAction.REFRESHED]),
                str(actions[FindingAction.UNCHANGED]),
                str(sum(len(f.app_ids) for f in mine)),
                "/".join(str(severities[k]) for k in ("high", "medium", "low")),
            ]
        )
        ids.append([f.case_id for f in mine if f.case_id is not None and f not in dismissed])
    lines = columns(header, rows, right=range(1, 6))
    text = [lines[0]]
    for line, case_ids in zip(lines[1:], ids, strict=True):
        text.append(line)
        if case_ids:
            text += hanging(f"cases {_some(case_ids)}", "    ", "          ")
    if dismissed:
        text += hanging(
            f"{len(dismissed)} finding(s) match cases dismissed in the last "
            f"{settings().detection.dismissal_memory_days} days and open nothing "
            f"(cases {_some([f.case_id for f in dismissed])})",
            "",
            "    ",
        )
    return Text("findings per policy\n" + "\n".join(text))


def demo_data(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the snapshot into.")],
    apps: Annotated[
        int, typer.Option("--apps", min=100, max=10_000_000, help="About this many apps.")
    ] = 5000,
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, max=2**31 - 1, help="Random seed (same seed, same data)."),
    ] = 7,
    fmt: Annotated[FileFormat, typer.Option("--format", help="File format.")] = FileFormat.CSV,
    disguised: Annotated[
        bool,
        typer.Option(
            "--disguised", help="Also plant duplicate apps hidden behind look-alike spellings."
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Write a synthetic platform with planted violations and planted look-alikes."""
    from cases.detection.synthetic import generate

    truth = generate(
        out_dir,
        apps=apps,
        seed=seed,
        fmt="parquet" if fmt is FileFormat.PARQUET else "csv",
        disguised=disguised,
    )
    violations: dict[str, list[list[str]]] = truth["violations"]
    decoys: dict[str, list[list[str]]] = truth["not_violations"]
    emit(
        truth if as_json else None,
        as_json,
        lambda: table(
            f"{truth['apps']:,} apps, {truth['developers']:,} developers in {out_dir} "
            "(ground_truth.json lists the planted groups)",
            ["planted", "kind", "groups", "apps"],
            [["violation", k, len(v), sum(map(len, v))] for k, v in violations.items()]
            + [["look-alike", k, len(v), sum(map(len, v))] for k, v in decoys.items()],
        ),
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("import")(import_snapshot)
    app.command("detect")(detect)
    app.command("demo-data")(demo_data)
