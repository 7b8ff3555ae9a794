"""A synthetic platform snapshot with planted violations and planted look-alikes.

The honest background (about 3 apps per developer, ``usage_hours`` hourly rows per active
app, a few harmless reports, some account links) is generated inside DuckDB from hashes of
the row number and the seed, so a million apps take seconds and no Python object exists per
row. The planted scenarios, a few per thousand apps, are built in Python with
``random.Random(seed)`` and appended. ``ground_truth.json`` lists every planted violation
per policy and every planted look-alike that must not be reported.

Background names are built so that a developer's (and a linked pair's) apps never share a
word, websites are unique per app, and traffic stays under 45% of the limit: the only
findings in a generated platform are the planted ones.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from cases.detection import disguises
from cases.detection.contract import FILES_BY_NAME

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _words(text: str) -> list[str]:
    return text.split()


ADJ = _words(
    "amber azure bold brave bright calm clever cosmic crisp daily deep eager early epic fair "
    "fast fresh gentle global golden grand happy honest jolly keen kind lively lucky lunar "
    "magic merry mighty modern neat noble open prime proud quick quiet rapid ready royal "
    "rustic sharp shiny silent simple smart solar solid sonic spicy steady sunny super swift "
    "tidy tiny urban vivid warm wild wise"
)
NOUN = _words(
    "anchor atlas badger beacon bison bridge canyon cedar comet compass coral crane delta "
    "ember falcon fern fjord forge garden glacier harbor hawk heron island jungle kernel "
    "lagoon lantern lotus maple meadow meteor nebula oasis orbit otter panda pebble pepper "
    "pixel planet prairie quartz raven reef river rocket saddle sequoia signal spruce summit "
    "tiger timber tundra valley walrus willow acorn bamboo cobalt dune geyser hollow"
)
VERB = _words("organise track share plan measure publish archive schedule review translate")
OBJ = _words("photos recipes workouts budgets notes playlists bookmarks invoices trips lessons")
SYL = _words("ka lo mi ra zu te vo ni sa de po lu fi ga re to ba ne xi mo")
TEMPLATES = (
    "'Helps small teams ' || verb || ' their ' || obj || ' every day.'",
    "'A ' || lower(noun) || ' companion for people who like to ' || verb || ' ' || obj",
    "'Open source tool that can ' || verb || ' your ' || obj || ' automatically.'",
)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Plant:
    """Rows of the planted scenarios and what they are."""

    rng: random.Random
    hours: int
    next_dev: int
    next_app: int
    rows: dict[str, list[list[Any]]] = field(
        default_factory=lambda: {k: [] for k in ("developers", "apps", "usage", "reports", "links")}
    )
    truth: dict[str, list[list[str]]] = field(default_factory=dict)
    decoys: dict[str, list[list[str]]] = field(default_factory=dict)
    used_brands: set[str] = field(default_factory=set)
    next_report: int = 0
    next_value: int = 0

    def brand(self) -> str:
        """A made-up brand name not used before (longer once short ones run out)."""
        tries = 0
        while True:
            length = 3 + tries // 8
            name = "".join(self.rng.choice(SYL) for _ in range(length)).capitalize()
            if name not in self.used_brands:
                self.used_brands.add(name)
                return name
            tries += 1

    def dev(self, *links: str) -> str:
        dev_id = f"d{self.next_dev}"
        self.next_dev += 1
        mail = "gmail.com" if self.rng.random() < 0.5 else "outlook.com"
        self.rows["developers"].append([dev_id, f"user{dev_id}", f"{dev_id}@{mail}", _ts(T0)])
        for value in links:
            kind, _, token = value.partition(":")
            self.rows["links"].append([dev_id, kind, token])
        return dev_id

    def link_value(self, kind: str) -> str:
        self.next_value += 1
        return f"{kind}:plant-{kind}-{self.next_value}"

    def app(
        self,
        dev: str,
        name: str,
        desc: str = "",
        site: str = "",
        cbs: str = "",
        limit: int | None = None,
    ) -> str:
        app_id = f"a{self.next_app}"
        self.next_app += 1
        created = _ts(T0 - timedelta(days=self.rng.randint(1, 400)))
        self.rows["apps"].append([app_id, dev, name, desc, site, cbs, created, limit])
        return app_id

    def use(self, app: str, hour: int, requests: int, limited: int = 0, posts: int = 0) -> None:
        stamp = _ts(T0 + timedelta(hours=hour))
        self.rows["usage"].append([app, stamp, requests, limited, posts])

    def report(self, app: str, count: int, reason: str) -> None:
        for _ in range(count):
            self.next_report += 1
            stamp = _ts(T0 + timedelta(hours=self.rng.randrange(self.hours)))
            self.rows["reports"].append([f"pr{self.next_report}", app, stamp, reason])

    def mark(self, bucket: dict[str, list[list[str]]], key: str, apps: list[str]) -> None:
        bucket.setdefault(key, []).append(apps)


def _violations(p: _Plant) -> None:
    """One instance of each violation pattern."""
    r = p.rng
    b = p.brand()
    dev = p.dev()
    apps = [p.app(dev, f"{b} Auto Poster", f"Posts {b} news to your timeline")]
    apps.append(p.app(dev, f"{b} Auto Poster {r.choice(['2', 'Pro', 'II'])}", "More posts"))
    p.mark(p.truth, "duplicate_apps", apps)
    b = p.brand()
    link = p.link_value(r.choice(["payment", "device", "phone"]))
    chain = p.link_value("ip")
    devs = [p.dev(link), p.dev(link, chain), p.dev(chain)]
    apps = [
        p.app(d, f"{name} {n}", f"{verb} for brands", f"https://{b.lower()}.com", "")
        for n, (d, name, verb) in enumerate(
            zip(
                devs,
                ["Brand Monitor", "Mention Desk", "Reply Hub"],
                ["Monitor mentions", "Answer mentions", "Reply fast"],
                strict=True,
            )
        )
    ]
    p.mark(p.truth, "duplicate_apps", apps)
    b, dev = p.brand(), p.dev()
    cb = f"https://auth.{b.lower()}.net/callback"
    apps = [
        p.app(dev, f"{b} Lists", "Curated lists", "", cb),
        p.app(dev, f"{p.brand()} Digest", "Weekly digest", "", cb + "2"),
    ]
    p.mark(p.truth, "duplicate_apps", apps)
    b, dev = p.brand(), p.dev()
    apps = [
        p.app(dev, f"{b} Scheduler {lab}", f"{lab} instance of the {b} scheduler")
        for lab in ("Dev", "Staging", "Prod")
    ]
    apps.append(p.app(dev, f"{b} Scheduler", f"The {b} scheduler for everyone"))
    p.mark(p.truth, "duplicate_apps", apps)
    b, link = p.brand(), p.link_value("device")
    d1, d2 = p.dev(link), p.dev(link)
    apps = [
        p.app(d1, f"{b} Bot Dev", f"Dev instance of {b} bot", f"https://{b.lower()}.dev"),
        p.app(d2, f"{b} Bot Prod", f"Prod instance of {b} bot", f"https://{b.lower()}.dev"),
    ]
    p.mark(p.truth, "duplicate_apps", apps)
    # rate-limit circumvention: group over one app's limit; traffic handed between apps
    link = p.link_value("payment")
    d1, d2 = p.dev(link), p.dev(link)
    group = [
        p.app(d, f"{p.brand()} {w}", f"{w} things", limit=1000)
        for d, w in ((d1, "Reader"), (d2, "Watcher"), (d1, "Fetcher"))
    ]
    start = r.randrange(p.hours - 12)
    for hour in range(start, start + 8):
        for app in group:
            p.use(app, hour, r.randint(860, 1000), r.choice([0, 0, 15]), r.randint(0, 20))
    p.mark(p.truth, "rate_limit_circumvention", group)
    dev = p.dev()
    group = [p.app(dev, f"{p.brand()} {w}", f"{w} feed", limit=500) for w in ("Relay", "Mirror")]
    start = r.randrange(p.hours - 12)
    for step in range(6):
        p.use(group[step % 2], start + step, 500, r.randint(50, 400), 5)
    p.mark(p.truth, "rate_limit_circumvention", group)
    # user-supplied keys: one service registered by many unlinked accounts
    host = f"{p.brand().lower()}suite.io"
    apps = [
        p.app(
            p.dev(),
            f"{p.brand()} for Me",
            "My copy of the suite",
            "",
            f"https://{host}/oauth/callback",
        )
        for _ in range(r.randint(5, 12))
    ]
    p.mark(p.truth, "user_supplied_keys", apps)
    # spam: rate above 2 per 1,000 posts with at least 10 reports
    dev = p.dev()
    app = p.app(dev, f"{p.brand()} Blaster", "Grow your audience fast")
    posts = r.randint(2000, 20000)
    for hour in range(20):
        p.use(app, hour, 200, 0, posts // 20)
    flagged = max(10, int(posts / 1000 * r.uniform(3, 30)))
    p.report(app, flagged * 3 // 4, "spam")
    p.report(app, flagged - flagged * 3 // 4, "automation")
    p.mark(p.truth, "spam", [app])


def _decoys(p: _Plant) -> None:
    """One instance of each look-alike that the contract says is not a violation."""
    r = p.rng
    b, dev = p.brand(), p.dev()
    apps = [
        p.app(
            dev,
            f"{b} Cal {lab}",
            f"{lab} instance of the {b} calendar",
            f"https://{b.lower()}cal.com",
            f"https://{b.lower()}cal.com/{lab.lower()}/cb",
        )
        for lab in ("Dev", "Staging", "Prod")
    ]
    p.mark(p.decoys, "dev_staging_prod", apps)
    common = r.choice(["Weather Bot", "Quote Of The Day", "Crypto Price Bot", "Daily Verse"])
    apps = [
        p.app(p.dev(), common, f"Posts the {common.lower()}", f"https://{p.brand().lower()}.org")
        for _ in range(6)
    ]
    p.mark(p.decoys, "unrelated_lookalikes", apps)
    dev = p.dev()
    apps = [
        p.app(dev, "Test App", "testing"),
        p.app(dev, "Test App 2", ""),
        p.app(dev, "My Bot", "my bot"),
    ]
    p.mark(p.decoys, "generic_names", apps)
    cbs = "http://localhost:3000/callback https://example.com/cb http://127.0.0.1:8080/cb"
    apps = [p.app(p.dev(), f"{p.brand()} Notes", "Notes", "", cbs) for _ in range(6)]
    dev = p.dev()
    apps += [
        p.app(dev, f"{p.brand()} Tasks", "Tasks", "", cbs),
        p.app(dev, f"{p.brand()} Clock", "Clock", "", cbs),
    ]
    p.mark(p.decoys, "placeholder_callbacks", apps)
    apps = [
        p.app(
            p.dev(),
            f"{x} Site",
            "Hobby site",
            f"https://{x.lower()}.herokuapp.com",
            f"https://{x.lower()}.herokuapp.com/cb",
        )
        for x in (p.brand() for _ in range(6))
    ]
    p.mark(p.decoys, "shared_hosting", apps)
    dev = p.dev()
    busy = p.app(dev, f"{p.brand()} Firehose", "Reads a lot", limit=1000)
    calm = p.app(dev, f"{p.brand()} Sidekick", "Reads a little", limit=1000)
    start = r.randrange(p.hours - 12)
    for hour in range(start, start + 10):
        p.use(busy, hour, 1000, r.randint(100, 900), 3)
        p.use(calm, hour, r.randint(10, 100), 0, 1)
    p.mark(p.decoys, "single_busy_app", [busy, calm])
    dev = p.dev()
    big = p.app(dev, f"{p.brand()} Social", "Huge social client")
    for hour in range(30):
        p.use(big, hour, 900, 0, 40000)
    p.report(big, 60, "spam")
    tiny = p.app(p.dev(), f"{p.brand()} Pal", "Tiny bot")
    p.use(tiny, 0, 3, 0, 2)
    p.report(tiny, 1, "spam")
    p.mark(p.decoys, "big_or_tiny_reported", [big, tiny])
    host = f"{p.brand().lower()}.io"
    apps = [
        p.app(p.dev(), f"{p.brand()} Client", "A client", "", f"https://{host}/cb")
        for _ in range(4)
    ]
    p.mark(p.decoys, "below_user_keys_threshold", apps)


BACKGROUND_SQL = """
CREATE TABLE bg_apps AS
WITH base AS (
    SELECT j, j // 3 AS dev, j % 3 AS k, CAST(hash(j, $seed) // 2 AS BIGINT) AS h
    FROM range($n) t(j)
), words AS (
    SELECT *, $adj[1 + (dev * 7 + k * 17) % 64] AS adj, $noun[1 + (dev * 13 + k * 29) % 64] AS noun,
        $verb[CAST(1 + (dev * 3) % 10 AS BIGINT)] AS verb,
        $obj[CAST(1 + (h // 11) % 10 AS BIGINT)] AS obj FROM base
), named AS (
    SELECT *, lower(adj || noun) || j AS slug,
        CASE WHEN h % 211 = 0 THEN 'Test App' WHEN h % 223 = 0 THEN 'My Bot'
             ELSE upper(adj[1]) || adj[2:] || ' ' || upper(noun[1]) || noun[2:] END AS name
    FROM words
), sited AS (
    SELECT *, CASE (h // 13) % 10
        WHEN 5 THEN '' WHEN 6 THEN ''
        WHEN 7 THEN 'https://' || slug || '.herokuapp.com'
        WHEN 8 THEN 'https://github.com/dev' || dev || '/' || slug
        WHEN 9 THEN 'https://www.' || slug || '.com'
        ELSE 'https://' || slug || '.io' END AS website
    FROM named
)
SELECT 'a' || j AS app_id, 'd' || dev AS developer_id, name,
    CASE k WHEN 0 THEN {t0} WHEN 1 THEN {t1} ELSE {t2} END AS description, website,
    CASE (h // 17) % 8
        WHEN 0 THEN CASE WHEN website = '' THEN 'http://localhost:3000/callback'
                         ELSE website || '/oauth/callback' END
        WHEN 1 THEN CASE WHEN website = '' THEN '' ELSE website || '/auth' END
        WHEN 2 THEN CASE WHEN website = '' THEN '' ELSE website || '/cb app' || j || '://oauth' END
        WHEN 3 THEN 'https://cb.' || slug || '.net/auth'
        WHEN 4 THEN 'http://localhost:3000/callback'
        WHEN 5 THEN 'https://example.com/callback http://127.0.0.1:8080/cb'
        ELSE '' END AS callback_urls,
    strftime(TIMESTAMP '2024-01-01' + to_days(CAST((h // 19) % 600 AS INTEGER)),
             '%Y-%m-%dT%H:%M:%SZ') AS created_at,
    CASE (h // 23) % 5 WHEN 0 THEN 500 WHEN 1 THEN 5000 END AS rate_limit_per_hour,
    (h // 29) % 100 < $active AS active, (h // 31) % ($hours - $span) AS start, h
FROM sited
"""


def generate(
    out: Path,
    *,
    apps: int = 5000,
    seed: int = 7,
    fmt: Literal["csv", "parquet"] = "csv",
    hours: int = 168,
    usage_hours: int = 30,
    active_percent: int = 50,
    disguised: bool = False,
) -> dict[str, Any]:
    """Write a snapshot of about ``apps`` apps to ``out``; returns its ground truth.

    ``disguised`` adds duplicate apps hidden behind look-alike spellings, and their honest
    look-alikes (:mod:`cases.detection.disguises`).
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    per_thousand = max(1, round(apps / 1000))
    scenarios = [_violations, _decoys, *([disguises.plant] if disguised else [])]
    sizing = _Plant(rng, hours, next_dev=0, next_app=0)  # a dry run counts the planted apps
    for _ in range(per_thousand):
        for scenario in scenarios:
            scenario(sizing)
    background = max(apps - sizing.next_app, 0)
    bg_devs = (background + 2) // 3
    plant = _Plant(random.Random(seed), hours, next_dev=bg_devs, next_app=background)
    for _ in range(per_thousand):
        for scenario in scenarios:
            scenario(plant)
    with tempfile.TemporaryDirectory(prefix="caseward-demo-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "demo.duckdb"))
        con.execute("SET TimeZone = 'UTC'; SET memory_limit = '2GB'")
        _background(con, background, bg_devs, seed, hours, usage_hours, active_percent)
        _register_plants(con, plant)
        _write(con, out, fmt)
        con.close()
    truth = {
        "apps": background + len(plant.rows["apps"]),
        "developers": plant.next_dev,
        "seed": seed,
        "violations": plant.truth,
        "not_violations": plant.decoys,
    }
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def _background(
    con: duckdb.DuckDBPyConnection,
    n: int,
    devs: int,
    seed: int,
    hours: int,
    span: int,
    active: int,
) -> None:
    sql = BACKGROUND_SQL.format(t0=TEMPLATES[0], t1=TEMPLATES[1], t2=TEMPLATES[2])
    params = {
        "n": n,
        "seed": seed,
        "adj": ADJ,
        "noun": NOUN,
        "verb": VERB,
        "obj": OBJ,
        "active": active,
        "hours": hours,
        "span": span,
    }
    con.execute(sql, params)
    con.execute(
        "CREATE TABLE bg_devs AS SELECT 'd' || i AS developer_id, 'dev_' || i AS handle, "
        "CASE WHEN hash(i, $seed) % 3 = 0 THEN 'dev' || i || '@gmail.com' "
        "ELSE 'dev' || i || '@company' || i || '.com' END AS email, "
        "'2024-01-01T00:00:00Z' AS created_at FROM range($devs) t(i)",
        {"seed": seed, "devs": devs},
    )
    con.execute(
        "CREATE TABLE bg_usage AS SELECT a.app_id, "
        "strftime(TIMESTAMP '2026-11-01' + to_hours(CAST(a.start + s AS INTEGER)), "
        "'%Y-%m-%dT%H:%M:%SZ') AS hour, "
        "CAST(coalesce(a.rate_limit_per_hour, 1000) * (5 + hash(a.h, s) % 40) // 100 AS BIGINT)"
        " AS requests, 0::BIGINT AS rate_limited, CAST(hash(s, a.h) % 50 AS BIGINT) AS posts "
        "FROM bg_apps a, range($span) t(s) WHERE a.active",
        {"span": span},
    )
    con.execute(
        "CREATE TABLE bg_reports AS SELECT 'r' || row_number() OVER () AS report_id, app_id, "
        "strftime(TIMESTAMP '2026-11-01' + to_hours(CAST((h // 37 + n) % $hours AS INTEGER)),"
        " '%Y-%m-%dT%H:%M:%SZ') AS reported_at, "
        "['spam', 'abuse', 'automation', 'other'][1 + (h // 41 + n) % 4] AS reason "
        "FROM (SELECT app_id, h, unnest(range(1 + (h // 43) % 4)) AS n FROM bg_apps "
        "WHERE active AND h % 33 = 0)",
        {"hours": hours},
    )
    con.execute(
        "CREATE TABLE bg_links AS "
        "SELECT 'd' || i AS developer_id, 'ip' AS link_type, 'ip-' || i AS value "
        "FROM range($devs) t(i) WHERE hash(i, $seed) % 5 = 1 "
        "UNION ALL SELECT 'd' || i, 'ip', 'office-' || (i // 2) FROM range($devs) t(i) "
        "WHERE (i // 2) % 50 = 7 AND (i // 2) * 2 + 1 < $devs",
        {"seed": seed, "devs": devs},
    )


# the planted rows' tables and the contract file each one becomes
PLANT_FILES = {
    "developers": "developers",
    "apps": "apps",
    "usage": "usage",
    "reports": "reports",
    "links": "account_links",
}


def _register_plants(con: duckdb.DuckDBPyConnection, plant: _Plant) -> None:
    names = {table: FILES_BY_NAME[file].column_names for table, file in PLANT_FILES.items()}
    for table, columns in names.items():
        rows = plant.rows[table]
        data = {c: [row[i] for row in rows] for i, c in enumerate(columns)}
        arrays = {
            c: pa.array(
                v,
                pa.int64()
                if c in ("requests", "rate_limited", "posts", "rate_limit_per_hour")
                else pa.string(),
            )
            for c, v in data.items()
        }
        con.register(f"plant_{table}_view", pa.table(arrays))
        con.execute(f"CREATE TABLE plant_{table} AS SELECT * FROM plant_{table}_view")
        con.unregister(f"plant_{table}_view")


def _write(con: duckdb.DuckDBPyConnection, out: Path, fmt: str) -> None:
    ts = "::TIMESTAMPTZ" if fmt == "parquet" else ""
    selects = {
        "developers": f"SELECT developer_id, handle, email, created_at{ts} AS created_at FROM "
        "(SELECT * FROM bg_devs UNION ALL SELECT * FROM plant_developers)",
        "apps": "SELECT app_id, developer_id, name, description, website, callback_urls, "
        f"created_at{ts} AS created_at, rate_limit_per_hour FROM "
        "(SELECT app_id, developer_id, name, description, website, callback_urls, "
        "created_at, rate_limit_per_hour FROM bg_apps UNION ALL "
        "SELECT * FROM plant_apps)",
        "usage": f"SELECT app_id, hour{ts} AS hour, requests, rate_limited, posts FROM "
        "(SELECT * FROM bg_usage UNION ALL SELECT * FROM plant_usage)",
        "reports": f"SELECT report_id, app_id, reported_at{ts} AS reported_at, reason FROM "
        "(SELECT * FROM bg_reports UNION ALL SELECT * FROM plant_reports)",
        "account_links": "SELECT * FROM bg_links UNION ALL SELECT * FROM plant_links",
    }
    for name, select in selects.items():
        for stale in (out / f"{name}.csv", out / f"{name}.parquet"):
            stale.unlink(missing_ok=True)
        target = out / f"{name}.{fmt}"
        options = "(FORMAT parquet, COMPRESSION zstd)" if fmt == "parquet" else "(HEADER)"
        con.execute(f"COPY ({select}) TO '{target}' {options}")
