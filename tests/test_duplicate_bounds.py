"""The SQL bounds of duplicate_apps only drop pairs that cannot reach a threshold.

``COMPARE_SQL`` filters candidate pairs in DuckDB before rapidfuzz scores them in Python. On
thousands of near-miss pairs (random edits of names, dropped and swapped words of
descriptions, at and around the thresholds) every pair Python would link must pass it.
"""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa

from cases.core.settings import DetectionSettings
from cases.detection import duplicate_apps

SETTINGS = DetectionSettings()
LETTERS = "abcdefghijklmnopqrstuvwxyz "
WORDS = [
    "send",
    "the",
    "best",
    "daily",
    "weather",
    "report",
    "to",
    "every",
    "follower",
    "of",
    "your",
    "brand",
    "account",
]


def _edit(text: str, rng: random.Random, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        spot = rng.randrange(len(chars) + 1)
        match rng.randrange(3):
            case 0:
                chars.insert(spot, rng.choice(LETTERS))
            case 1 if chars:
                del chars[min(spot, len(chars) - 1)]
            case _ if chars:
                chars[min(spot, len(chars) - 1)] = rng.choice(LETTERS)
    return "".join(chars)


def _description(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(8, len(WORDS)))
    return " ".join(words)


def test_sql_bounds_keep_every_pair_python_links() -> None:
    rng = random.Random(14)
    apps = []
    for pair in range(1500):
        name = " ".join(rng.choice(["hollow", "vessel", "zuna", "meadow", "sync"]) for _ in "xy")
        name += f" {rng.randint(1, 99)}"
        desc = _description(rng)
        other_desc = " ".join(w for w in desc.split() if rng.random() > 0.12)
        for n, (spelled, text) in enumerate(
            [(name, desc), (_edit(name, rng, rng.randint(0, 6)), other_desc)]
        ):
            apps.append((f"p{pair}-{n}", f"d{pair}", f"d{pair}", spelled, text))
    con = duckdb.connect()
    columns = ["app_id", "developer_id", "party_id", "name", "description"]
    con.register(
        "rows", pa.table(dict(zip(columns, map(list, zip(*apps, strict=True)), strict=True)))
    )
    con.execute("CREATE TABLE active_apps AS SELECT * FROM rows")
    con.execute("CREATE TABLE app_hosts (app_id VARCHAR, host VARCHAR, source VARCHAR)")
    duplicate_apps._prepare(con, SETTINGS)
    con.execute(duplicate_apps.PAIRS_SQL, {"max_party": SETTINGS.duplicate_pairwise_max_party_apps})
    kept = {tuple(link["apps"]) for link in duplicate_apps._links(con, SETTINGS)}
    rows = con.execute(
        "SELECT a.app_id, b.app_id, a.name_core, b.name_core, a.name_compact, b.name_compact, "
        "a.generic OR b.generic, a.desc_core, b.desc_core, a.informative AND b.informative "
        "FROM dup_apps a JOIN dup_apps b ON a.party_id = b.party_id AND a.app_id < b.app_id"
    ).fetchall()
    assert len(rows) == 1500
    linked = set()
    for a, b, an, bn, ac, bc, generic, ad, bd, informative in rows:
        name = 0.0 if generic else duplicate_apps._name_similarity(an, bn, ac, bc)
        desc = duplicate_apps._description_similarity(ad, bd) if informative else 0.0
        if name >= SETTINGS.duplicate_name_similarity or desc >= (
            SETTINGS.duplicate_description_similarity
        ):
            linked.add((a, b))
    assert 300 < len(linked) < 1400  # the sample straddles the thresholds
    assert linked == kept
