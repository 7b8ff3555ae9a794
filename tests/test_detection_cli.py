"""``caseward import``, ``detect`` and ``demo-data`` through the real CLI entry point."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from cases.core.db import session_scope
from cases.core.models import App, Case, CaseEvent, Developer
from cases.core.settings import get_settings
from tests.detection_fixtures import SnapshotBuilder, sqlite_engine


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    made = sqlite_engine(tmp_path)
    monkeypatch.setenv("CASEWARD_DATABASE_URL", str(made.url))
    monkeypatch.setenv("CASEWARD_NOW", "2026-11-10T09:00:00Z")
    monkeypatch.setenv("CASEWARD_ACTOR", "lead-ann")
    get_settings.cache_clear()
    yield made
    get_settings.cache_clear()


def cli(*args: str) -> int:
    from caseward.cli.main import main

    return main(list(args))


def snapshot() -> SnapshotBuilder:
    b = SnapshotBuilder()
    for dev in ("d1", "d2", "d3"):
        b.developer(dev)
    b.app("a1", "d1", "Acme Auto Poster", "Posts news").app("a2", "d1", "Acme Auto Poster 2", "x")
    b.app("a3", "d2", "Blaster", "Grows your audience")
    b.usage("a3", 0, 100, 0, 1000).reports("a3", 12, "spam")
    b.app("a4", "d3", "Garden Planner", "Plans garden beds")
    return b


def counts(engine: Engine) -> tuple[int, int, int, int]:
    with session_scope(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(Developer)) or 0,
            session.scalar(select(func.count()).select_from(App)) or 0,
            session.scalar(select(func.count()).select_from(Case)) or 0,
            session.scalar(select(func.count()).select_from(CaseEvent)) or 0,
        )


def test_detect_opens_cases_once(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = snapshot().write(tmp_path / "snap")
    assert cli("detect", "--data", str(folder), "--json") == 0
    first = json.loads(capsys.readouterr().out)
    assert [(f["policy"], f["app_ids"]) for f in first] == [
        ("duplicate_apps", ["a1", "a2"]),
        ("spam", ["a3"]),
    ]
    assert set(first[0]) == {"policy", "app_ids", "developer_ids", "score", "evidence", "case_id"}
    before = counts(engine)
    assert before == (3, 4, 2, 2)
    assert cli("detect", "--data", str(folder), "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert [f["case_id"] for f in again] == [f["case_id"] for f in first]
    assert counts(engine) == before  # nothing written the second time
    assert cli("detect", "--data", str(folder)) == 0
    assert "2 finding(s)" in capsys.readouterr().out


def test_finding_attaches_to_open_case_and_refreshes_evidence(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = snapshot()
    assert cli("detect", "--data", str(b.write(tmp_path / "s1")), "--json") == 0
    first = {f["policy"]: f for f in json.loads(capsys.readouterr().out)}
    b.app("a5", "d1", "Acme Auto Poster Pro", "more")
    b.reports("a3", 8, "automation")
    assert cli("detect", "--data", str(b.write(tmp_path / "s2")), "--json") == 0
    second = {f["policy"]: f for f in json.loads(capsys.readouterr().out)}
    assert second["duplicate_apps"]["case_id"] == first["duplicate_apps"]["case_id"]
    assert second["duplicate_apps"]["app_ids"] == ["a1", "a2", "a5"]
    with session_scope(engine) as session:
        case = session.get(Case, second["spam"]["case_id"])
        assert case is not None and case.evidence["flagged_reports"] == 20
        kinds = session.scalars(
            select(CaseEvent.kind).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        ).all()
        assert kinds == ["open", "evidence_refreshed"]
    assert counts(engine)[2] == 2


def test_banned_apps_are_not_reported_again(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = snapshot().write(tmp_path / "snap")
    assert cli("import", "--data", str(folder)) == 0
    capsys.readouterr()
    with session_scope(engine) as session:
        session.execute(update(App).where(App.id == "a3").values(status="banned"))
    assert cli("detect", "--data", str(folder), "--json") == 0
    assert [f["policy"] for f in json.loads(capsys.readouterr().out)] == ["duplicate_apps"]


@pytest.mark.parametrize(
    "breakage, location",
    [
        (lambda b: b.rows["usage"][0].__setitem__(1, "yesterday"), "usage.csv:2:hour:"),
        (lambda b: b.app("a9", "d-ghost", "Ghost"), "apps.csv:7:developer_id:"),
        (lambda b: b.developer("d2"), "developers.csv:5:developer_id:"),
        (lambda b: b.rows["usage"][0].__setitem__(2, -3), "usage.csv:2:requests:"),
    ],
    ids=["bad-timestamp", "unknown-developer", "duplicate-id", "negative-count"],
)
def test_bad_snapshot_exits_1_and_changes_nothing(
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    breakage: Callable[[SnapshotBuilder], object],
    location: str,
) -> None:
    good = snapshot()
    assert cli("import", "--data", str(good.write(tmp_path / "good"))) == 0
    capsys.readouterr()
    before = counts(engine)
    bad = snapshot().app("a-new", "d1", "Brand New")
    breakage(bad)
    folder = bad.write(tmp_path / "bad")
    for command in ("import", "detect"):
        assert cli(command, "--data", str(folder)) == 1
        err = capsys.readouterr().err
        assert location in err
        assert "caseward: snapshot rejected" in err
    assert counts(engine) == before


def test_missing_column_and_truncated_file(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = snapshot().write(tmp_path / "snap")
    text = (folder / "reports.csv").read_text().replace("reason", "why")
    (folder / "reports.csv").write_text(text)
    usage = (folder / "usage.csv").read_text()
    (folder / "usage.csv").write_text(usage[:-8])
    assert cli("detect", "--data", str(folder)) == 1
    err = capsys.readouterr().err
    assert "reports.csv:1:reason: required column is missing" in err
    assert "usage.csv:2:" in err
    assert counts(engine) == (0, 0, 0, 0)


def test_demo_data_then_detect(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    assert cli("demo-data", str(folder), "--apps", "1200", "--seed", "3", "--json") == 0
    truth = json.loads(capsys.readouterr().out)
    assert truth["apps"] == 1200
    assert cli("detect", "--data", str(folder), "--json") == 0
    findings = json.loads(capsys.readouterr().out)
    planted = {p: sorted(map(sorted, g)) for p, g in truth["violations"].items()}
    found: dict[str, list[list[str]]] = {}
    for f in findings:
        found.setdefault(f["policy"], []).append(f["app_ids"])
    assert {p: sorted(g) for p, g in found.items()} == planted
