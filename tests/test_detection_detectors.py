"""The four detectors on small hand-built snapshots: planted positives and the contract's
"not violations" (docs/platform-data.md)."""

from __future__ import annotations

from pathlib import Path

from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding
from cases.detection.run import detect_findings
from cases.detection.snapshot import open_snapshot
from tests.detection_fixtures import SnapshotBuilder

SETTINGS = DetectionSettings()


def run(builder: SnapshotBuilder, tmp_path: Path, banned: tuple[str, ...] = ()) -> list[Finding]:
    with open_snapshot(builder.write(tmp_path / "snap")) as snap:
        return detect_findings(snap, SETTINGS, banned=banned)


def of(findings: list[Finding], policy: str) -> list[Finding]:
    return [f for f in findings if f.policy.value == policy]


def devs(builder: SnapshotBuilder, *ids: str) -> SnapshotBuilder:
    for dev in ids:
        builder.developer(dev)
    return builder


# -- duplicate_apps -------------------------------------------------------------------------


def test_near_identical_names_of_one_account(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Acme Auto Poster", "Schedules posts")
    b.app("a2", "d1", "Acme Auto Poster 2", "Another thing entirely")
    b.app("a3", "d1", "Garden Planner", "Plans your garden beds and watering")
    [finding] = of(run(b, tmp_path), "duplicate_apps")
    assert finding.app_ids == ["a1", "a2"]
    assert finding.developer_ids == ["d1"]
    link = finding.evidence["links"][0]
    assert link["apps"] == ["a1", "a2"] and link["name_similarity"] >= 0.88
    assert [a["name"] for a in finding.evidence["apps"]] == [
        "Acme Auto Poster",
        "Acme Auto Poster 2",
    ]


def test_same_website_across_linked_accounts(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1", "d2", "d3")
    b.app("a1", "d1", "Brand Monitor", "Watch mentions", "https://brandwatchr.io")
    b.app("a2", "d2", "Mention Helper", "Answer mentions", "https://brandwatchr.io/app")
    b.link("d1", "payment", "card-9").link("d2", "device", "dev-1").link("d3", "device", "dev-1")
    b.link("d3", "payment", "card-9")
    [finding] = of(run(b, tmp_path), "duplicate_apps")
    assert finding.app_ids == ["a1", "a2"] and finding.developer_ids == ["d1", "d2"]
    assert finding.evidence["links"][0]["shared_hosts"] == ["brandwatchr.io"]
    kinds = {link["link_type"] for link in finding.evidence["account_links"]}
    assert kinds == {"payment", "device"}
    assert "several accounts" in finding.evidence["exception"]


def test_same_callback_host_and_similar_description(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    desc = "Automatically follows back everyone who follows your brand account"
    b.app("a1", "d1", "Followr", desc, callbacks="https://followr.net/cb")
    b.app("a2", "d1", "Amigo", desc + ".", callbacks="https://other-followr.net/cb")
    b.app("a3", "d1", "Thing", "unrelated", callbacks="https://followr.net/oauth")
    [finding] = of(run(b, tmp_path), "duplicate_apps")
    assert finding.app_ids == ["a1", "a2", "a3"]


def test_dev_staging_prod_of_one_account_is_allowed(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    for label in ("Dev", "Staging", "Prod"):
        b.app(
            f"a-{label}",
            "d1",
            f"Acme Scheduler {label}",
            f"{label} instance of the Acme scheduler",
            "https://acme-sched.io",
        )
    assert of(run(b, tmp_path), "duplicate_apps") == []


def test_fourth_app_breaks_the_exception(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    for label in ("Dev", "Staging", "Prod", "Production"):
        b.app(f"a-{label}", "d1", f"Acme Scheduler {label}", f"{label} instance of Acme scheduler")
    [finding] = of(run(b, tmp_path), "duplicate_apps")
    assert len(finding.app_ids) == 4
    assert "more than 3" in finding.evidence["exception"]


def test_labelled_set_split_across_accounts_is_a_violation(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1", "d2").link("d1", "phone", "p").link("d2", "phone", "p")
    b.app("a1", "d1", "Acme Scheduler Dev", "Dev instance of Acme scheduler")
    b.app("a2", "d2", "Acme Scheduler Prod", "Prod instance of Acme scheduler")
    [finding] = of(run(b, tmp_path), "duplicate_apps")
    assert finding.developer_ids == ["d1", "d2"]


def test_unlabelled_copy_is_a_violation(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Acme Scheduler Dev", "Dev instance of Acme scheduler")
    b.app("a2", "d1", "Acme Scheduler", "Schedules posts for the Acme brand")
    [finding] = of(run(b, tmp_path), "duplicate_apps")
    assert "not labelled" in finding.evidence["exception"]


def test_label_used_twice_is_a_violation(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Acme Scheduler Dev", "Dev instance of Acme scheduler")
    b.app("a2", "d1", "Acme Scheduler Development", "Development instance of Acme scheduler")
    assert len(of(run(b, tmp_path), "duplicate_apps")) == 1


def test_similar_apps_of_unrelated_accounts(tmp_path: Path) -> None:
    b = SnapshotBuilder()
    for i in range(8):
        b.developer(f"d{i}").app(f"a{i}", f"d{i}", "Weather Bot", "Posts the local weather")
    assert run(b, tmp_path) == []


def test_generic_names_are_not_duplicates(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Test App", "trying the API")
    b.app("a2", "d1", "Test App 2", "a reading list for my book club members")
    b.app("a3", "d1", "My Bot", "")
    b.app("a4", "d1", "My Test Bot", "hello")
    assert of(run(b, tmp_path), "duplicate_apps") == []


def test_placeholder_and_loopback_callbacks_link_nothing(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    cbs = "http://localhost:3000/cb http://127.0.0.1/cb https://example.com/cb https://x.test/cb"
    b.app("a1", "d1", "Garden Planner", "Plans garden beds", callbacks=cbs)
    b.app("a2", "d1", "Recipe Finder", "Finds recipes", callbacks=cbs)
    assert of(run(b, tmp_path), "duplicate_apps") == []


def test_shared_hosting_subdomains_are_distinct(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Garden Planner", "Plans garden beds", "https://garden.herokuapp.com")
    b.app("a2", "d1", "Recipe Finder", "Finds recipes", "https://recipes.herokuapp.com")
    b.app("a3", "d1", "Book Log", "Reading log", "https://github.com/d1/booklog")
    b.app("a4", "d1", "Run Log", "Running log", "https://github.com/d1/runlog")
    assert of(run(b, tmp_path), "duplicate_apps") == []


def test_one_app_on_several_platforms(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app(
        "a1",
        "d1",
        "Photo Share",
        "Share photos",
        "https://photoshare.io",
        "https://photoshare.io/cb photoshare://oauth https://m.photoshare.io/cb",
    )
    assert run(b, tmp_path) == []


def test_banned_apps_are_not_reported(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Acme Auto Poster", "x").app("a2", "d1", "Acme Auto Poster 2", "y")
    assert run(b, tmp_path, banned=("a2",)) == []


# -- rate_limit_circumvention -----------------------------------------------------------------


def test_group_over_one_apps_limit(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1", "d2").link("d1", "ip", "x").link("d2", "ip", "x")
    b.app("a1", "d1", "Alpha", limit=100).app("a2", "d2", "Beta", limit=100)
    b.app("a3", "d1", "Gamma", limit=100)
    for hour in range(4):
        b.usage("a1", hour, 95, 3).usage("a2", hour, 90, 0).usage("a3", hour, 10)
    [finding] = of(run(b, tmp_path), "rate_limit_circumvention")
    assert finding.app_ids == ["a1", "a2"] and finding.developer_ids == ["d1", "d2"]
    hours = finding.evidence["hours"]
    assert len(hours) == 4 and hours[0]["combined_requests"] == 185
    shares = {s["app_id"]: s["share"] for s in hours[0]["apps"]}
    assert abs(shares["a1"] - 95 / 185) < 1e-3
    assert finding.score == 1.85


def test_rate_limited_traffic_moving_between_apps(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Alpha", limit=100).app("a2", "d1", "Beta", limit=100)
    b.usage("a1", 0, 100, 50).usage("a2", 1, 98, 40).usage("a1", 2, 97, 30).usage("a2", 3, 99)
    [finding] = of(run(b, tmp_path), "rate_limit_circumvention")
    assert finding.evidence["handoffs_total"] == 3
    assert finding.evidence["handoffs"][0]["from_app"] == "a1"


def test_one_busy_app_is_not_circumvention(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Alpha", limit=100).app("a2", "d1", "Beta", limit=100)
    for hour in range(10):
        b.usage("a1", hour, 100, 500).usage("a2", hour, 20)
    assert run(b, tmp_path) == []


def test_busy_apps_of_unrelated_accounts(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1", "d2")
    b.app("a1", "d1", "Alpha", limit=100).app("a2", "d2", "Beta", limit=100)
    for hour in range(10):
        b.usage("a1", hour, 99, 5).usage("a2", hour, 99, 5)
    assert run(b, tmp_path) == []


def test_default_limit_applies(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1")
    b.app("a1", "d1", "Alpha").app("a2", "d1", "Beta")
    for hour in range(3):
        b.usage("a1", hour, 900).usage("a2", hour, 850)
    [finding] = of(run(b, tmp_path), "rate_limit_circumvention")
    assert finding.evidence["hours"][0]["one_app_limit"] == SETTINGS.default_rate_limit_per_hour


# -- user_supplied_keys -----------------------------------------------------------------------


def test_service_registered_by_many_accounts(tmp_path: Path) -> None:
    b = SnapshotBuilder()
    for i in range(6):
        b.developer(f"d{i}").app(
            f"a{i}", f"d{i}", f"My Social {i}", callbacks="https://socialsuite.io/oauth/cb"
        )
    [finding] = of(run(b, tmp_path), "user_supplied_keys")
    assert len(finding.app_ids) == 6 and finding.score == 6
    assert finding.evidence["service_hosts"] == [
        {"host": "socialsuite.io", "seen_as": ["callback"]}
    ]
    assert len(finding.evidence["accounts"]) == 6


def test_linked_accounts_count_once(tmp_path: Path) -> None:
    b = SnapshotBuilder()
    for i in range(5):
        b.developer(f"d{i}").app(f"a{i}", f"d{i}", f"Tool {i}", website="https://suite.io")
    b.link("d0", "device", "z").link("d1", "device", "z")
    findings = run(b, tmp_path)
    assert of(findings, "user_supplied_keys") == []
    assert [f.app_ids for f in of(findings, "duplicate_apps")] == [["a0", "a1"]]


def test_placeholder_and_shared_hosting_hosts_are_no_service(tmp_path: Path) -> None:
    b = SnapshotBuilder()
    for i in range(10):
        b.developer(f"d{i}").app(
            f"a{i}",
            f"d{i}",
            f"Thing {i}",
            website=f"https://thing{i}.herokuapp.com",
            callbacks="http://localhost:8080/cb https://example.com/cb http://127.0.0.1/cb "
            f"https://github.com https://github.com/user{i}",
        )
    assert run(b, tmp_path) == []


# -- spam -------------------------------------------------------------------------------------


def test_spam_rate_above_threshold(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1").app("a1", "d1", "Blaster")
    b.usage("a1", 0, 100, 0, 2000).usage("a1", 1, 100, 0, 2000)
    b.reports("a1", 12, "spam").reports("a1", 3, "automation").reports("a1", 40, "abuse")
    [finding] = of(run(b, tmp_path), "spam")
    assert finding.evidence["reports_per_1000_posts"] == 3.75
    assert finding.evidence["threshold_per_1000_posts"] == 2.0
    assert finding.evidence["flagged_reports"] == 15 and finding.score == 3.75


def test_one_report_on_a_tiny_app_is_not_spam(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1").app("a1", "d1", "Tiny").usage("a1", 0, 5, 0, 3)
    b.reports("a1", 1)
    assert run(b, tmp_path) == []


def test_huge_app_judged_by_rate_not_count(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1").app("a1", "d1", "Huge").usage("a1", 0, 10**6, 0, 10**6)
    b.reports("a1", 500)
    assert run(b, tmp_path) == []


def test_reports_of_other_reasons_do_not_count(tmp_path: Path) -> None:
    b = devs(SnapshotBuilder(), "d1").app("a1", "d1", "Rude").usage("a1", 0, 5, 0, 100)
    b.reports("a1", 50, "abuse").reports("a1", 50, "other")
    assert run(b, tmp_path) == []
