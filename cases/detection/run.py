"""Detection end to end: snapshot -> registry -> four detectors -> findings -> cases.

``detect_findings`` is pure analysis over an open :class:`Snapshot` (no Caseward database);
``run_detection`` does the whole job inside the caller's session (the caller commits).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.core.enums import AppStatus
from cases.core.models import App
from cases.core.settings import DetectionSettings
from cases.detection import (
    duplicate_apps,
    rate_limit_circumvention,
    spam,
    user_supplied_keys,
)
from cases.detection.finding import Finding
from cases.detection.hosts import build_app_hosts
from cases.detection.parties import build_parties
from cases.detection.registry_import import ImportSummary, import_registry
from cases.detection.snapshot import Progress, Snapshot, open_snapshot
from cases.detection.to_cases import sync_findings
from cases.leads import rules
from cases.leads.rules import TriageReport

Detector = Callable[[duckdb.DuckDBPyConnection, DetectionSettings], list[Finding]]

DETECTORS: dict[str, Detector] = {
    "duplicate_apps": duplicate_apps.detect,
    "rate_limit_circumvention": rate_limit_circumvention.detect,
    "user_supplied_keys": user_supplied_keys.detect,
    "spam": spam.detect,
}


@dataclass
class DetectionReport:
    """What one run found and did (the cases triage rules then decided, when they are
    on), with the time each step took."""

    findings: list[Finding]
    imported: ImportSummary | None = None
    timings: dict[str, float] = field(default_factory=dict)
    triaged: TriageReport | None = None


def load_snapshot(
    data_dir: Path, settings: DetectionSettings, progress: Progress | None = None
) -> Snapshot:
    """Open and validate ``data_dir`` (raises ImportFailed with every problem)."""
    return open_snapshot(
        data_dir,
        max_problems=settings.import_max_problems,
        memory_limit=settings.duckdb_memory_limit,
        max_field_chars=settings.max_field_chars,
        progress=progress,
    )


def banned_app_ids(session: Session) -> set[str]:
    """Apps enforcement has already banned: never reported again."""
    return set(session.scalars(select(App.id).where(App.status == AppStatus.BANNED)))


def prepare(
    con: duckdb.DuckDBPyConnection, settings: DetectionSettings, banned: Iterable[str]
) -> None:
    """Tables every detector reads: parties, active (not banned) apps, service hosts."""
    build_parties(con)
    con.register("banned_view", pa.table({"app_id": pa.array(sorted(banned), pa.string())}))
    con.execute(
        "CREATE OR REPLACE TABLE active_apps AS "
        "SELECT a.*, p.party_id, coalesce(a.rate_limit_per_hour, $default) AS hourly_limit "
        "FROM apps a JOIN parties p USING (developer_id) ANTI JOIN banned_view b USING (app_id)",
        {"default": settings.default_rate_limit_per_hour},
    )
    con.unregister("banned_view")
    build_app_hosts(con, settings)


def detect_findings(
    snapshot: Snapshot,
    settings: DetectionSettings,
    *,
    banned: Iterable[str] = (),
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
) -> list[Finding]:
    """Run the four detectors on a validated snapshot; findings sorted by policy and apps."""
    report = progress or (lambda _m: None)
    clock = timings if timings is not None else {}
    start = time.perf_counter()
    report("preparing parties and hosts")
    prepare(snapshot.con, settings, banned)
    clock["prepare"] = time.perf_counter() - start
    findings: list[Finding] = []
    for name, detector in DETECTORS.items():
        report(f"detecting {name}")
        start = time.perf_counter()
        findings.extend(detector(snapshot.con, settings))
        clock[name] = time.perf_counter() - start
    return sorted(findings, key=lambda f: (f.policy.value, f.app_ids))


@contextmanager
def registry_import_alongside(
    session: Session, snapshot: Snapshot, *, progress: Progress | None = None
) -> Iterator[Future[tuple[ImportSummary, float]]]:
    """Import the registry into ``session`` in a second thread while the block runs.

    The import is Python and SQLite/PostgreSQL work, detection mostly DuckDB's, so on two
    cores they overlap. The block must not use ``session``; when it ends, the import has
    finished (its summary and seconds, or its error, come from ``result()``) and the
    session is the caller's again, still in the same transaction.
    """

    def timed() -> tuple[ImportSummary, float]:
        start = time.perf_counter()
        summary = import_registry(session, snapshot, progress=progress)
        return summary, time.perf_counter() - start

    with ThreadPoolExecutor(1, thread_name_prefix="registry-import") as pool:
        yield pool.submit(timed)


def run_detection(
    session: Session,
    data_dir: Path,
    *,
    settings: DetectionSettings,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> DetectionReport:
    """Validate, import the registry, detect and open or refresh cases, in ``session``."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with load_snapshot(data_dir, settings, progress) as snapshot:
        timings["validate"] = time.perf_counter() - start
        banned = banned_app_ids(session)  # the import never changes an app's status
        with registry_import_alongside(session, snapshot, progress=progress) as importing:
            findings = detect_findings(
                snapshot, settings, banned=banned, progress=progress, timings=timings
            )
        imported, timings["registry"] = importing.result()
    start = time.perf_counter()
    synced = sync_findings(
        session, findings, settings=settings, actor=actor, now=now, progress=progress
    )
    timings["cases"] = time.perf_counter() - start
    start = time.perf_counter()
    triaged = triage_findings(session, synced, now=now)
    timings["triage"] = time.perf_counter() - start
    return DetectionReport(synced, imported, timings, triaged)


def triage_findings(
    session: Session, findings: Iterable[Finding], *, now: datetime
) -> TriageReport:
    """The triage rules on the cases of ``findings`` (when rules are on), in ``session``:
    detection opens the cases, then rules decide the ones still opened, in the same run."""
    return rules.triage(session, (f.case_id for f in findings if f.case_id is not None), now=now)
