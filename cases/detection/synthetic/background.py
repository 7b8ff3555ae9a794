"""The honest background, generated inside DuckDB from hashes of the row number and the seed.

About 3 apps per developer, ``usage_hours`` hourly rows per active app, a few harmless reports
and some account links; no Python object exists per row, so a million apps take seconds.
Names are built so that a developer's (and a linked pair's) apps never share a word, websites
are unique per app, and traffic stays under 45% of the limit. Every e-mail address and website
is on a reserved domain (``.example``, ``example.com``, loopback), so that a demo pointed at a
real provider can never reach a person.
"""

from __future__ import annotations

import duckdb

from cases.detection.synthetic.vocabulary import ADJ, NOUN, OBJ, TEMPLATES, VERB

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
        WHEN 7 THEN 'https://' || slug || '.hosting.example'
        WHEN 8 THEN 'https://dev' || dev || '-' || slug || '.pages.example'
        WHEN 9 THEN 'https://www.' || slug || '.example'
        ELSE 'https://' || slug || '.example' END AS website
    FROM named
)
SELECT 'a' || j AS app_id, 'd' || dev AS developer_id, name,
    CASE k WHEN 0 THEN {t0} WHEN 1 THEN {t1} ELSE {t2} END AS description, website,
    CASE (h // 17) % 8
        WHEN 0 THEN CASE WHEN website = '' THEN 'http://localhost:3000/callback'
                         ELSE website || '/oauth/callback' END
        WHEN 1 THEN CASE WHEN website = '' THEN '' ELSE website || '/auth' END
        WHEN 2 THEN CASE WHEN website = '' THEN '' ELSE website || '/cb app' || j || '://oauth' END
        WHEN 3 THEN 'https://cb.' || slug || '.example/auth'
        WHEN 4 THEN 'http://localhost:3000/callback'
        WHEN 5 THEN 'https://example.com/callback http://127.0.0.1:8080/cb'
        ELSE '' END AS callback_urls,
    strftime(TIMESTAMP '2024-01-01' + to_days(CAST((h // 19) % 600 AS INTEGER)),
             '%Y-%m-%dT%H:%M:%SZ') AS created_at,
    CASE (h // 23) % 5 WHEN 0 THEN 500 WHEN 1 THEN 5000 END AS rate_limit_per_hour,
    (h // 29) % 100 < $active AS active, (h // 31) % ($hours - $span) AS start, h
FROM sited
"""


def build_background(
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
        "CASE WHEN hash(i, $seed) % 3 = 0 THEN 'dev' || i || '@webmail.example' "
        "ELSE 'dev' || i || '@company' || i || '.example' END AS email, "
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
