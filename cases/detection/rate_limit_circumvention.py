"""Rate-limit circumvention: one party spreading traffic over several apps to beat limits.

Policy (shared/seeds, "multiple applications for the same use case"): "Creating multiple
applications for identical, similar, or substantially overlapping use cases, or for the
purpose of circumventing Twitter's API usage limits, is not permitted." Operational
definition (docs/platform-data.md): "a group of apps of one party whose combined traffic
exceeds the per-app limit in several hours while the apps each run close to their own
limits, or whose rate-limited traffic moves from one app to another. One busy app that hits
its own limit is not circumvention."

Two signals, both set-based over the usage rows that matter (an app at
``circumvention_near_limit`` of its limit, or refused requests):

* over-limit hours: two or more apps of a party each at or above the near-limit share of
  their own limit, together above one app's limit (the largest of theirs), in at least
  ``circumvention_min_hours`` hours;
* hand-offs: app A is rate limited in hour h, and in hour h+1 A drops below the near-limit
  share while app B of the same party, not near its limit in hour h, reaches it; at least
  ``circumvention_min_handoffs`` of them.

Score: the group's peak combined requests over one app's limit (hand-offs only: the number of
hand-offs). Severity from score, or from hours over ``circumvention_min_hours``, whichever is
larger.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import duckdb

from cases.core.enums import Policy
from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding, severity_for

HOT_SQL = """
CREATE OR REPLACE TEMP TABLE hot AS
SELECT u.app_id, a.party_id, a.developer_id, u.hour, u.requests, u.rate_limited,
       a.hourly_limit, u.requests >= $near * a.hourly_limit AS near
FROM usage u JOIN active_apps a USING (app_id)
WHERE u.requests >= $near * a.hourly_limit OR u.rate_limited > 0
"""

HOURS_SQL = """
WITH hours AS (
    SELECT party_id, hour, sum(requests) AS total, max(hourly_limit) AS one_limit,
           list({'app_id': app_id, 'developer_id': developer_id, 'requests': requests,
                 'limit': hourly_limit, 'rate_limited': rate_limited} ORDER BY app_id) AS apps
    FROM hot WHERE near GROUP BY party_id, hour
    HAVING count(*) >= 2 AND sum(requests) > max(hourly_limit)
)
SELECT * FROM hours
WHERE party_id IN (SELECT party_id FROM hours GROUP BY party_id HAVING count(*) >= $min_hours)
ORDER BY party_id, hour
"""

HANDOFF_SQL = """
WITH moves AS (
    SELECT x.party_id, y.hour, x.app_id AS from_app, x.developer_id AS from_developer,
           x.rate_limited AS from_rate_limited, y.app_id AS to_app,
           y.developer_id AS to_developer, y.requests AS to_requests, y.hourly_limit AS to_limit
    FROM hot x
    JOIN hot y ON y.party_id = x.party_id AND y.hour = x.hour + INTERVAL 1 HOUR
              AND y.app_id <> x.app_id AND y.near
    LEFT JOIN hot x_after ON x_after.app_id = x.app_id AND x_after.hour = y.hour
    LEFT JOIN hot y_before ON y_before.app_id = y.app_id AND y_before.hour = x.hour
    WHERE x.rate_limited > 0
      AND NOT coalesce(x_after.near, false) AND NOT coalesce(y_before.near, false)
)
SELECT * FROM moves
WHERE party_id IN (SELECT party_id FROM moves GROUP BY party_id HAVING count(*) >= $min_moves)
ORDER BY party_id, hour, from_app, to_app
"""


def detect(con: duckdb.DuckDBPyConnection, settings: DetectionSettings) -> list[Finding]:
    """One finding per party that spread its traffic over several apps."""
    con.execute(HOT_SQL, {"near": settings.circumvention_near_limit})
    hours: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for party_id, hour, total, one_limit, apps in con.execute(
        HOURS_SQL, {"min_hours": settings.circumvention_min_hours}
    ).fetchall():
        hours[party_id].append(
            {"hour": hour, "total": int(total), "limit": int(one_limit), "apps": apps}
        )
    moves: dict[str, list[dict[str, Any]]] = defaultdict(list)
    cursor = con.execute(HANDOFF_SQL, {"min_moves": settings.circumvention_min_handoffs})
    names = [d[0] for d in cursor.description or []]
    for row in cursor.fetchall():
        move = dict(zip(names, row, strict=True))
        moves[str(move.pop("party_id"))].append(move)
    con.execute("DROP TABLE hot")
    return [
        _finding(hours.get(party, []), moves.get(party, []), settings)
        for party in sorted(set(hours) | set(moves))
    ]


def _finding(
    hours: list[dict[str, Any]], moves: list[dict[str, Any]], settings: DetectionSettings
) -> Finding:
    cap = settings.evidence_max_items
    apps: set[str] = set()
    developers: set[str] = set()
    hour_rows = []
    peak = 0.0
    for entry in hours:
        ratio = entry["total"] / entry["limit"]
        peak = max(peak, ratio)
        shares = []
        for app in entry["apps"]:
            apps.add(app["app_id"])
            developers.add(app["developer_id"])
            shares.append(
                {
                    "app_id": app["app_id"],
                    "requests": app["requests"],
                    "own_limit": app["limit"],
                    "share": app["requests"] / entry["total"],
                    "rate_limited": app["rate_limited"],
                }
            )
        hour_rows.append(
            {
                "hour": entry["hour"],
                "combined_requests": entry["total"],
                "one_app_limit": entry["limit"],
                "times_limit": ratio,
                "apps": shares,
            }
        )
    for move in moves:
        apps.update((move["from_app"], move["to_app"]))
        developers.update((move["from_developer"], move["to_developer"]))
    score = peak if hours else float(len(moves))
    by_hours = len(hours) / settings.circumvention_min_hours
    ratio = max(peak, by_hours, len(moves) / settings.circumvention_min_handoffs)
    parts = []
    if hours:
        parts.append(f"together above one app's limit in {len(hours)} hours (peak {peak:.1f}x)")
    if moves:
        parts.append(f"rate-limited traffic moved between its apps {len(moves)} times")
    evidence = {
        "summary": f"{len(apps)} apps of one party: " + "; ".join(parts),
        "near_limit_share": settings.circumvention_near_limit,
        "min_hours": settings.circumvention_min_hours,
        "hours_over_limit": len(hours),
        "peak_times_limit": peak,
        "hours": hour_rows[:cap],
        "handoffs_total": len(moves),
        "handoffs": [
            {
                "hour": m["hour"],
                "from_app": m["from_app"],
                "from_rate_limited_previous_hour": m["from_rate_limited"],
                "to_app": m["to_app"],
                "to_requests": m["to_requests"],
                "to_own_limit": m["to_limit"],
            }
            for m in moves[:cap]
        ],
    }
    return Finding(
        policy=Policy.RATE_LIMIT_CIRCUMVENTION,
        app_ids=sorted(apps),
        developer_ids=sorted(developers),
        score=score,
        severity=severity_for(ratio, settings.high_severity_factor),
        reason=f"Rate-limit circumvention: {len(apps)} apps of one party " + "; ".join(parts),
        evidence=evidence,
    )
