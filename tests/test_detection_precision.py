"""Precision and recall per policy on generated platforms of several thousand apps: the
plain one, and one where parties hide duplicate apps behind look-alike spellings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding
from cases.detection.run import detect_findings, load_snapshot
from cases.detection.synthetic import generate
from cases.detection.synthetic.disguises import DISGUISES

POLICIES = ("duplicate_apps", "rate_limit_circumvention", "user_supplied_keys", "spam")


Platform = tuple[dict[str, object], list[Finding]]


def _detect(folder: Path, *, disguised: bool) -> Platform:
    truth = generate(folder, apps=6000, seed=20261101, disguised=disguised)
    settings = DetectionSettings()
    with load_snapshot(folder, settings) as snapshot:
        findings = detect_findings(snapshot, settings)
    return truth, findings


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return _detect(tmp_path_factory.mktemp("platform"), disguised=False)


@pytest.fixture(scope="module")
def disguised_platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return _detect(tmp_path_factory.mktemp("disguised"), disguised=True)


def _check_policy(platform: Platform, policy: str) -> None:
    truth, findings = platform
    violations = truth["violations"]
    assert isinstance(violations, dict)
    planted = {app for group in violations[policy] for app in group}
    found = {app for f in findings if f.policy.value == policy for app in f.app_ids}
    hits = len(planted & found)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(planted)
    assert precision == 1.0, (policy, sorted(found - planted)[:10])
    assert recall == 1.0, (policy, sorted(planted - found)[:10])
    # group level: every planted group is one finding
    groups = {tuple(sorted(g)) for g in violations[policy]}
    assert {tuple(f.app_ids) for f in findings if f.policy.value == policy} == groups


@pytest.mark.parametrize("policy", POLICIES)
def test_precision_and_recall(platform: Platform, policy: str) -> None:
    _check_policy(platform, policy)


@pytest.mark.parametrize("policy", POLICIES)
def test_precision_and_recall_with_disguised_duplicates(
    disguised_platform: Platform, policy: str
) -> None:
    _check_policy(disguised_platform, policy)


def test_disguised_platform_plants_each_disguise_and_look_alike(
    disguised_platform: Platform,
) -> None:
    truth, findings = disguised_platform
    violations, decoys = truth["violations"], truth["not_violations"]
    assert isinstance(violations, dict) and isinstance(decoys, dict)
    # six per thousand apps: one group per disguise on top of the plain platform's five
    assert len(violations["duplicate_apps"]) == 6 * (5 + len(DISGUISES))
    assert {
        "disguised_names_of_unrelated_accounts",
        "disguised_generic_names",
        "environment_labels_in_other_styles",
    } <= set(decoys)
    innocent = {app for groups in decoys.values() for group in groups for app in group}
    assert not innocent & {app for f in findings for app in f.app_ids}


def test_no_look_alike_is_reported(platform: Platform) -> None:
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
