"""Generate a snapshot: the background, the planted scenarios, the files and their truth.

The planted scenarios, a few per thousand apps, are appended to the background.
``ground_truth.json`` lists every planted violation per policy and every planted look-alike
that must not be reported: the only findings in a generated platform are the planted ones.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from cases.detection.contract import FILES_BY_NAME
from cases.detection.synthetic import disguises
from cases.detection.synthetic.background import build_background
from cases.detection.synthetic.plants import Plant, plant_decoys, plant_violations


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
    look-alikes (:mod:`cases.detection.synthetic.disguises`).
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    per_thousand = max(1, round(apps / 1000))
    scenarios = [plant_violations, plant_decoys, *([disguises.plant] if disguised else [])]
    sizing = Plant(rng, hours, next_dev=0, next_app=0)  # a dry run counts the planted apps
    for _ in range(per_thousand):
        for scenario in scenarios:
            scenario(sizing)
    background = max(apps - sizing.next_app, 0)
    bg_devs = (background + 2) // 3
    plant = Plant(random.Random(seed), hours, next_dev=bg_devs, next_app=background)
    for _ in range(per_thousand):
        for scenario in scenarios:
            scenario(plant)
    with tempfile.TemporaryDirectory(prefix="caseward-demo-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "demo.duckdb"))
        con.execute("SET TimeZone = 'UTC'; SET memory_limit = '2GB'")
        build_background(con, background, bg_devs, seed, hours, usage_hours, active_percent)
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


PLANT_FILES = {
    "developers": "developers",
    "apps": "apps",
    "usage": "usage",
    "reports": "reports",
    "links": "account_links",
}


def _register_plants(con: duckdb.DuckDBPyConnection, plant: Plant) -> None:
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
