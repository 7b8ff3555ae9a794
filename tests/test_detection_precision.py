"""Precision and recall per policy on a generated platform of several thousand apps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding
from cases.detection.run import detect_findings, load_snapshot
from cases.detection.synthetic import generate

POLICIES = ("duplicate_apps", "rate_limit_circumvention", "user_supplied_keys", "spam")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], list[Finding]]:
    folder = tmp_path_factory.mktemp("platform")
    truth = generate(folder, apps=6000, seed=20261101)
    settings = DetectionSettings()
    with load_snapshot(folder, settings) as snapshot:
        findings = detect_findings(snapshot, settings)
    return truth, findings


@pytest.mark.parametrize("policy", POLICIES)
def test_precision_and_recall(
    platform: tuple[dict[str, object], list[Finding]], policy: str
) -> None:
    truth, findings = platform
    violations = truth["violations"]
    assert isinstance(violations, dict)
    planted = {app for group in violations[policy] for app in group}
    found = {app for f in findings if f.policy.value == policy for app in f.app_ids}
    hits = len(planted & found)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(planted)
    assert precision >= 0.95, (policy, sorted(found - planted)[:10])
    assert recall >= 0.95, (policy, sorted(planted - found)[:10])
    # group level: every planted group is one finding
    groups = {tuple(sorted(g)) for g in violations[policy]}
    assert {tuple(f.app_ids) for f in findings if f.policy.value == policy} == groups


def test_no_look_alike_is_reported(platform: tuple[dict[str, object], list[Finding]]) -> None:
    truth, findings = platform
    decoys = truth["not_violations"]
    assert isinstance(decoys, dict)
    assert set(decoys) == {
        "dev_staging_prod",
        "unrelated_lookalikes",
        "generic_names",
        "placeholder_callbacks",
        "shared_hosting",
        "single_busy_app",
        "big_or_tiny_reported",
        "below_user_keys_threshold",
    }
    innocent = {app for groups in decoys.values() for group in groups for app in group}
    flagged = {app for f in findings for app in f.app_ids}
    assert not innocent & flagged


def test_generator_is_deterministic_and_writes_parquet(tmp_path: Path) -> None:
    one = generate(tmp_path / "a", apps=1500, seed=5)
    two = generate(tmp_path / "b", apps=1500, seed=5, fmt="parquet")
    assert one == two
    assert (tmp_path / "a" / "apps.csv").read_bytes() == (
        generate(tmp_path / "c", apps=1500, seed=5) and (tmp_path / "c" / "apps.csv").read_bytes()
    )
    assert (tmp_path / "b" / "usage.parquet").exists()
    assert json.loads((tmp_path / "b" / "ground_truth.json").read_text())["apps"] == 1500
    settings = DetectionSettings()
    with load_snapshot(tmp_path / "b", settings) as snapshot:
        assert snapshot.count("apps") == 1500
