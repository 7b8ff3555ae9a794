"""detect and report under the Prefect test harness, on a generated platform."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cases.core.db import session_scope
from cases.core.models import Case
from cases.detection.synthetic import generate
from flows.detect import detect
from flows.report import report
from tests.factories import T0
from tests.prefect_fixtures import prefect_harness  # noqa: F401  (the session fixture)

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def test_detect_opens_cases_then_report_counts_them(sqlite_engine: Engine, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    generate(snapshot, apps=300, seed=3)

    counts = detect(snapshot=str(snapshot), now=T0.isoformat())
    again = detect(snapshot=str(snapshot), now=T0.isoformat())

    with session_scope(sqlite_engine) as session:
        cases = session.scalar(select(func.count()).select_from(Case))
    assert counts["opened"] == cases > 0
    assert again["opened"] == 0 and again["unchanged"] + again["refreshed"] == cases
    figures = report(now=T0.isoformat())
    assert sum(r["cases"] for r in figures["open"]) == cases
    assert figures["overturn_rate"] is None
