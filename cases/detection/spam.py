"""Spam: apps whose users' content draws spam and automation reports far above the norm.

Policy (shared/seeds, "abuse prevention and security"): "If we start to notice (or receive
reports) of spam coming from your program, we'll reach out to you to try and remedy the
situation." Operational definition (docs/platform-data.md): "an app whose spam and
automation reports per 1,000 posts over the window exceed a threshold (default 2.0), with at
least a minimum number of such reports (default 10), so that one report on a tiny app is not
a case and a huge app is judged by its rate, not its count."

The window is the whole snapshot. An app with reports but no posts is judged as if it had
one post. Score: reports per 1,000 posts; severity from score / threshold.
"""

from __future__ import annotations

import duckdb

from cases.core.enums import Policy
from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding, severity_for

SQL = """
WITH rep AS (
    SELECT app_id,
           count(*) FILTER (WHERE reason IN ('spam', 'automation')) AS flagged,
           count(*) FILTER (WHERE reason = 'spam') AS spam,
           count(*) FILTER (WHERE reason = 'automation') AS automation,
           count(*) AS all_reports,
           min(reported_at) FILTER (WHERE reason IN ('spam', 'automation')) AS first_at,
           max(reported_at) FILTER (WHERE reason IN ('spam', 'automation')) AS last_at,
           list(report_id ORDER BY reported_at, report_id)
               FILTER (WHERE reason IN ('spam', 'automation'))[1:$samples] AS sample
    FROM reports GROUP BY app_id
    HAVING count(*) FILTER (WHERE reason IN ('spam', 'automation')) >= $min_reports
),
posts AS (
    SELECT app_id, sum(posts) AS posts FROM usage
    WHERE app_id IN (SELECT app_id FROM rep) GROUP BY app_id
),
win AS (SELECT min(hour) AS start, max(hour) + INTERVAL 1 HOUR AS stop FROM usage)
SELECT a.app_id, a.developer_id, a.name, r.flagged, r.spam, r.automation, r.all_reports,
       coalesce(p.posts, 0) AS posts,
       r.flagged * 1000.0 / greatest(coalesce(p.posts, 0), 1) AS rate,
       r.first_at, r.last_at, r.sample, win.start, win.stop
FROM rep r JOIN active_apps a USING (app_id) LEFT JOIN posts p USING (app_id), win
WHERE r.flagged * 1000.0 / greatest(coalesce(p.posts, 0), 1) > $threshold
ORDER BY a.app_id
"""


def detect(con: duckdb.DuckDBPyConnection, settings: DetectionSettings) -> list[Finding]:
    """One finding per app over the spam threshold."""
    threshold = settings.spam_reports_per_1000_posts
    rows = con.execute(
        SQL,
        {
            "min_reports": settings.spam_min_reports,
            "threshold": threshold,
            "samples": settings.evidence_max_items,
        },
    ).fetchall()
    findings = []
    for (
        app_id,
        developer_id,
        name,
        flagged,
        spam,
        automation,
        all_reports,
        posts,
        rate,
        first_at,
        last_at,
        sample,
        start,
        stop,
    ) in rows:
        evidence = {
            "summary": (
                f"{flagged} spam/automation reports on {posts:,} posts: {rate:.2f} per 1,000 "
                f"posts, threshold {threshold:g}"
            ),
            "app": {"app_id": app_id, "developer_id": developer_id, "name": name},
            "reports_per_1000_posts": float(rate),
            "threshold_per_1000_posts": threshold,
            "flagged_reports": flagged,
            "min_reports": settings.spam_min_reports,
            "by_reason": {"spam": spam, "automation": automation},
            "all_reports": all_reports,
            "posts": posts,
            "window": {"from": start, "to": stop},
            "reports_between": {"first": first_at, "last": last_at},
            "sample_report_ids": list(sample or []),
        }
        findings.append(
            Finding(
                policy=Policy.SPAM,
                app_ids=[app_id],
                developer_ids=[developer_id],
                score=float(rate),
                severity=severity_for(float(rate) / threshold, settings.high_severity_factor),
                reason=(
                    f"Spam: {name!r} drew {flagged} spam/automation reports, {rate:.1f} per "
                    f"1,000 posts (threshold {threshold:g})"
                ),
                evidence=evidence,
            )
        )
    return findings
