"""Duplicate apps: one party running several apps for the same use case.

Policy (shared/seeds, "multiple applications for the same use case"): "Creating multiple
applications for identical, similar, or substantially overlapping use cases ... is not
permitted. This applies whether the applications are registered to a single Twitter user
account, or across multiple accounts." and "As a single exception to these rules, the use of
a maximum of 3 applications for development, staging, and production instances of the same
service is permitted. These apps should be registered to a single user account, and should be
clearly identified (in the name and description) as dev, staging, and prod instances of a
single service." Operational definition: docs/platform-data.md, ``duplicate_apps``.

Apps are only ever compared inside one party (account plus linked accounts), never across the
platform: parties up to ``duplicate_pairwise_max_party_apps`` apps compare all their pairs
(about 3 per developer), larger parties only pairs that share a blocking key (normalised
name, first name word, description start), and apps sharing a service host are paired by a
hash join on (party, host). Names and descriptions are compared as a person reads them: as
skeletons (:mod:`cases.detection.skeleton`), so ``Hоllowvess3l404`` is ``Hollowvessel404``.
Two apps are linked when they share a service host, or their names (environment labels
removed) are at least ``duplicate_name_similarity`` alike by rapidfuzz's token-sort ratio or
run together (re-spacing hides nothing) and neither is generic (``Test App``), or their
informative descriptions are at least ``duplicate_description_similarity`` alike (by the
lower of token-sort ratio and word-set Jaccard index). Linked apps form
groups (connected components); a group is exempt only when it is at most 3 apps of one
account, each labelled dev, staging or prod in both name and description, no label twice.

Score: the strongest link (1.0 for a shared host). Severity: high from 5 apps or 3 accounts,
low for two apps of one account linked by names or descriptions only, medium otherwise.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa
from rapidfuzz import fuzz

from cases.core.enums import Policy, Severity
from cases.core.settings import DetectionSettings
from cases.detection.checks import q
from cases.detection.finding import Finding
from cases.detection.parties import UnionFind
from cases.detection.skeleton import LOOKUP, register_lookup, skeleton, skeleton_sql

BATCH = 200_000


def _label_case(settings: DetectionSettings, var: str) -> str:
    whens = " ".join(
        f"WHEN {var} IN ({', '.join(q(skeleton(w)) for w in words)}) THEN {q(label)}"
        for label, words in settings.duplicate_env_labels.items()
    )
    return f"CASE {whens} END"


def _sql_words(words: list[str]) -> str:
    """A list literal of the skeletons of ``words`` (what the tokens are compared with)."""
    return "[" + ", ".join(q(skeleton(w)) for w in words) + "]"


def _any_of(words: list[str]) -> str:
    """A regular expression alternation of the skeletons of ``words``."""
    return "(?:" + "|".join(re.escape(skeleton(w)) for w in words) + ")"


def _prepare(con: duckdb.DuckDBPyConnection, settings: DetectionSettings) -> None:
    """``dup_apps``: the apps of parties with two or more, their names and descriptions as
    skeleton tokens, environment labels removed, and what the comparison needs.

    Word lists are tested with regular expressions over the words joined by spaces (a
    label word anywhere; only generic words), which DuckDB runs far faster than list
    functions over a million rows.
    """
    label_words = [w for ws in settings.duplicate_env_labels.values() for w in ws]
    words = _sql_words(label_words)
    has_label = q(f"(?:^| ){_any_of(label_words)}(?: |$)")
    generic_word = _any_of(settings.duplicate_generic_name_words)
    only_generic = q(f"(?:{generic_word}(?: {generic_word})*)?")
    register_lookup(
        con, "SELECT name FROM active_apps UNION ALL SELECT description FROM active_apps"
    )
    labels = _label_case(settings, "x")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE dup_apps AS
        WITH multi AS (
            SELECT party_id FROM active_apps GROUP BY party_id HAVING count(*) >= 2
        ),
        tok AS (
            SELECT a.app_id, a.developer_id, a.party_id,
                regexp_extract_all({skeleton_sql("a.name", "sn.skeleton")}, '[a-z0-9]+')
                    AS ntok,
                regexp_extract_all({skeleton_sql("a.description", "sd.skeleton")}, '[a-z0-9]+')
                    AS dtok
            FROM active_apps a SEMI JOIN multi USING (party_id)
            LEFT JOIN {LOOKUP} sn ON sn.text = a.name
            LEFT JOIN {LOOKUP} sd ON sd.text = a.description
        ),
        text AS (
            SELECT *,
                regexp_matches(array_to_string(ntok, ' '), {has_label}) AS nlabelled,
                regexp_matches(array_to_string(dtok, ' '), {has_label}) AS dlabelled
            FROM tok
        ),
        core AS (
            SELECT app_id, developer_id, party_id,
                CASE WHEN nlabelled
                     THEN list_filter(ntok, lambda x: NOT list_contains({words}, x))
                     ELSE ntok END AS ncore,
                CASE WHEN dlabelled
                     THEN list_filter(dtok, lambda x: NOT list_contains({words}, x))
                     ELSE dtok END AS dcore,
                CASE WHEN nlabelled THEN list_distinct(list_transform(
                    list_filter(ntok, lambda x: list_contains({words}, x)), lambda x: {labels}))
                    END AS nlabels,
                CASE WHEN dlabelled THEN list_distinct(list_transform(
                    list_filter(dtok, lambda x: list_contains({words}, x)), lambda x: {labels}))
                    END AS dlabels
            FROM text
        ),
        joined AS (
            SELECT *, array_to_string(ncore, ' ') AS name_core,
                array_to_string(dcore, ' ') AS desc_core, list_distinct(dcore) AS dwords
            FROM core
        )
        SELECT app_id, developer_id, party_id, name_core,
            array_to_string(list_sort(ncore), ' ') AS name_sorted,
            array_to_string(ncore, '') AS name_compact,
            dwords,
            len(dwords) AS nwords,
            desc_core,
            coalesce(ncore[1], '') AS first_word,
            CASE WHEN len(nlabels) = 1 THEN nlabels[1] END AS name_label,
            CASE WHEN len(dlabels) = 1 THEN dlabels[1] END AS desc_label,
            regexp_full_match(name_core, {only_generic}) AS generic,
            length(desc_core) >= {settings.duplicate_min_description_chars}
              AND NOT regexp_full_match(desc_core, {only_generic}) AS informative
        FROM joined
        """
    )
    con.unregister(LOOKUP)


PAIRS_SQL = """
CREATE OR REPLACE TEMP TABLE dup_pairs AS
WITH sizes AS (SELECT party_id, count(*) AS n FROM dup_apps GROUP BY party_id),
small AS (
    SELECT a.app_id AS a_id, b.app_id AS b_id
    FROM dup_apps a JOIN sizes s USING (party_id)
    JOIN dup_apps b ON b.party_id = a.party_id AND a.app_id < b.app_id
    WHERE s.n <= $max_party
),
keys AS (
    SELECT app_id, party_id,
        unnest(['n:' || name_core, 'w:' || first_word, 'd:' || left(desc_core, 24)]) AS k
    FROM dup_apps JOIN sizes USING (party_id) WHERE n > $max_party
),
large AS (
    SELECT DISTINCT a.app_id AS a_id, b.app_id AS b_id
    FROM keys a JOIN keys b ON a.party_id = b.party_id AND a.k = b.k AND a.app_id < b.app_id
    WHERE a.k NOT IN ('n:', 'w:', 'd:')
),
party_hosts AS (
    SELECT h.app_id, h.host, d.party_id FROM app_hosts h JOIN dup_apps d USING (app_id)
),
host_pairs AS (
    SELECT a.app_id AS a_id, b.app_id AS b_id, list(DISTINCT a.host ORDER BY a.host) AS hosts
    FROM party_hosts a JOIN party_hosts b
      ON a.party_id = b.party_id AND a.host = b.host AND a.app_id < b.app_id
    GROUP BY ALL
),
pairs AS (SELECT * FROM small UNION SELECT * FROM large UNION SELECT a_id, b_id FROM host_pairs)
SELECT p.a_id, p.b_id, h.hosts FROM pairs p LEFT JOIN host_pairs h USING (a_id, b_id)
"""

# The WHERE clause only drops pairs that cannot reach a threshold: rapidfuzz's ratio is
# 1 - indel / (len a + len b) and indel >= levenshtein >= the difference of the lengths (for
# the sorted words and for the words run together), and the description score is at most
# the word-set Jaccard index i / (n a + n b - i) of i shared words. So Python scores a
# handful of pairs, not every candidate, and cheap bounds go before costly ones.
COMPARE_SQL = """
SELECT p.a_id, p.b_id, p.hosts, a.name_core, b.name_core, a.name_compact, b.name_compact,
       a.generic OR b.generic, a.desc_core, b.desc_core, a.informative AND b.informative
FROM dup_pairs p JOIN dup_apps a ON a.app_id = p.a_id JOIN dup_apps b ON b.app_id = p.b_id
WHERE p.hosts IS NOT NULL
   OR (NOT (a.generic OR b.generic)
       AND ((abs(length(a.name_sorted) - length(b.name_sorted))
               <= $name_edits * (length(a.name_sorted) + length(b.name_sorted)) + $slack
             AND levenshtein(a.name_sorted, b.name_sorted)
               <= $name_edits * (length(a.name_sorted) + length(b.name_sorted)) + $slack)
         OR (abs(length(a.name_compact) - length(b.name_compact))
               <= $name_edits * (length(a.name_compact) + length(b.name_compact)) + $slack
             AND levenshtein(a.name_compact, b.name_compact)
               <= $name_edits * (length(a.name_compact) + length(b.name_compact)) + $slack)))
   OR (a.informative AND b.informative
       AND least(a.nwords, b.nwords) >= $desc_min * greatest(a.nwords, b.nwords) - $slack
       AND len(list_intersect(a.dwords, b.dwords)) * (1 + $desc_min)
           >= $desc_min * (a.nwords + b.nwords) - $slack)
"""
# the bounds err on the side of keeping a pair: Python decides at the exact threshold
SLACK = 1e-6


def _links(con: duckdb.DuckDBPyConnection, settings: DetectionSettings) -> list[dict[str, Any]]:
    """Every linked pair of apps with what links them."""
    name_min = settings.duplicate_name_similarity
    desc_min = settings.duplicate_description_similarity
    links: list[dict[str, Any]] = []
    params = {"name_edits": 1 - name_min, "desc_min": desc_min, "slack": SLACK}
    reader = con.sql(COMPARE_SQL, params=params).to_arrow_reader(BATCH)
    for batch in reader:
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for (
            a_id,
            b_id,
            hosts,
            a_name,
            b_name,
            a_compact,
            b_compact,
            generic,
            a_desc,
            b_desc,
            informative,
        ) in zip(*columns, strict=True):
            name_sim = 0.0 if generic else _name_similarity(a_name, b_name, a_compact, b_compact)
            desc_sim = _description_similarity(a_desc, b_desc) if informative else 0.0
            if hosts or name_sim >= name_min or desc_sim >= desc_min:
                link: dict[str, Any] = {"apps": [a_id, b_id]}
                if hosts:
                    link["shared_hosts"] = hosts
                if not generic:
                    link["name_similarity"] = round(name_sim, 3)
                if name_sim >= name_min:
                    link["name_skeletons"] = [a_name, b_name]
                if informative:
                    link["description_similarity"] = round(desc_sim, 3)
                link["score"] = 1.0 if hosts else max(name_sim, desc_sim)
                links.append(link)
    return links


def _name_similarity(a: str, b: str, a_compact: str, b_compact: str) -> float:
    """Skeleton names compared word by word in any order (rapidfuzz's token-sort ratio) or
    run together, so that re-spacing (``Hollowvessel 404``) hides nothing."""
    return max(fuzz.token_sort_ratio(a, b), fuzz.ratio(a_compact, b_compact)) / 100


def _description_similarity(a: str, b: str) -> float:
    """The lower of rapidfuzz's token-sort ratio and the word-set Jaccard index.

    Templated descriptions that differ in the one word that matters ("publish their lessons"
    and "publish their playlists") are alike by characters but not by words; only text that
    is near-identical by both measures links two apps.
    """
    words_a, words_b = set(a.split()), set(b.split())
    jaccard = len(words_a & words_b) / len(words_a | words_b) if words_a | words_b else 0.0
    return min(fuzz.token_sort_ratio(a, b) / 100, jaccard)


def _exempt(apps: list[dict[str, Any]], settings: DetectionSettings) -> bool:
    """The dev/staging/prod exception, exactly as the contract states it."""
    if len(apps) > settings.duplicate_exception_max_apps:
        return False
    if len({a["developer_id"] for a in apps}) != 1:
        return False
    labels = [a["name_label"] for a in apps]
    if any(label is None for label in labels):
        return False
    if any(a["name_label"] != a["desc_label"] for a in apps):
        return False
    return len(set(labels)) == len(labels)


def detect(con: duckdb.DuckDBPyConnection, settings: DetectionSettings) -> list[Finding]:
    """One finding per group of linked apps that the exception does not cover."""
    _prepare(con, settings)
    con.execute(PAIRS_SQL, {"max_party": settings.duplicate_pairwise_max_party_apps})
    links = _links(con, settings)
    sets = UnionFind()
    for link in links:
        sets.union(*link["apps"])
    groups = sets.groups()
    if not groups:
        return []
    member_of = {app: root for root, apps in groups.items() for app in apps}
    con.register(
        "dup_members",
        pa.table({"app_id": list(member_of), "grp": list(member_of.values())}),
    )
    cursor = con.execute(
        "SELECT m.grp, d.app_id, d.developer_id, d.party_id, d.name_core, d.name_label, "
        "d.desc_label, x.name, x.description, x.website, x.callback_urls, x.created_at "
        "FROM dup_members m JOIN dup_apps d USING (app_id) JOIN active_apps x USING (app_id) "
        "ORDER BY m.grp, d.app_id"
    )
    names = [c[0] for c in cursor.description or []]
    apps_by_group: dict[str, list[dict[str, Any]]] = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row, strict=True))
        apps_by_group.setdefault(str(record.pop("grp")), []).append(record)
    con.unregister("dup_members")
    links_by_group: dict[str, list[dict[str, Any]]] = {}
    for link in links:
        links_by_group.setdefault(member_of[link["apps"][0]], []).append(link)
    account_links = _account_links(con, apps_by_group)
    findings = []
    for root in sorted(apps_by_group):
        apps = apps_by_group[root]
        if _exempt(apps, settings):
            continue
        findings.append(_finding(apps, links_by_group[root], account_links.get(root, []), settings))
    return findings


def _account_links(
    con: duckdb.DuckDBPyConnection, apps_by_group: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """For groups spanning accounts: the shared account links within their party."""
    party_of = {
        root: str(apps[0]["party_id"])
        for root, apps in apps_by_group.items()
        if len({a["developer_id"] for a in apps}) > 1
    }
    if not party_of:
        return {}
    con.register("dup_parties", pa.table({"party_id": sorted(set(party_of.values()))}))
    rows = con.execute(
        """
        WITH members AS (
            SELECT p.party_id, l.developer_id, l.link_type, l.value
            FROM account_links l JOIN parties p USING (developer_id)
            SEMI JOIN dup_parties USING (party_id)
        )
        SELECT party_id, link_type, value, list(DISTINCT developer_id ORDER BY developer_id)
        FROM members GROUP BY ALL HAVING count(DISTINCT developer_id) > 1
        ORDER BY party_id, link_type, value
        """
    ).fetchall()
    con.unregister("dup_parties")
    by_party: dict[str, list[dict[str, Any]]] = {}
    for party_id, link_type, value, developers in rows:
        by_party.setdefault(str(party_id), []).append(
            {"link_type": link_type, "value": value, "developer_ids": developers}
        )
    return {root: by_party.get(party, []) for root, party in party_of.items()}


def _finding(
    apps: list[dict[str, Any]],
    links: list[dict[str, Any]],
    account_links: list[dict[str, Any]],
    settings: DetectionSettings,
) -> Finding:
    cap = settings.evidence_max_items
    developers = sorted({str(a["developer_id"]) for a in apps})
    score = max(link["score"] for link in links)
    shared = any("shared_hosts" in link for link in links)
    if len(apps) >= 5 or len(developers) >= 3:
        severity = Severity.HIGH
    elif len(developers) == 1 and len(apps) == 2 and not shared:
        severity = Severity.LOW
    else:
        severity = Severity.MEDIUM
    links = sorted(links, key=lambda link: (-link["score"], link["apps"]))
    how = "share a service host" if shared else "have near-identical names or descriptions"
    accounts = "one account" if len(developers) == 1 else f"{len(developers)} linked accounts"
    evidence = {
        "summary": f"{len(apps)} apps of {accounts} {how}",
        "apps": [
            {
                "app_id": a["app_id"],
                "developer_id": a["developer_id"],
                "name": a["name"],
                "name_skeleton": a["name_core"],
                "description": str(a["description"])[:300],
                "website": a["website"],
                "callback_urls": a["callback_urls"],
                "created_at": a["created_at"],
                "environment_label": a["name_label"],
            }
            for a in apps[: cap * 2]
        ],
        "links": links[: cap * 2],
        "links_total": len(links),
        "account_links": account_links[:cap],
        "thresholds": {
            "name_similarity": settings.duplicate_name_similarity,
            "description_similarity": settings.duplicate_description_similarity,
        },
        "exception": _why_not_exempt(apps, settings),
    }
    return Finding(
        policy=Policy.DUPLICATE_APPS,
        app_ids=[str(a["app_id"]) for a in apps],
        developer_ids=developers,
        score=float(score),
        severity=severity,
        reason=f"Duplicate apps: {len(apps)} apps of {accounts} {how}",
        evidence=evidence,
    )


def _why_not_exempt(apps: list[dict[str, Any]], settings: DetectionSettings) -> str:
    limit = settings.duplicate_exception_max_apps
    if len({a["developer_id"] for a in apps}) != 1:
        return "dev/staging/prod exception does not apply: the apps span several accounts"
    if len(apps) > limit:
        return f"dev/staging/prod exception does not apply: more than {limit} apps"
    unlabeled = [
        a["app_id"] for a in apps if not a["name_label"] or a["name_label"] != a["desc_label"]
    ]
    if unlabeled:
        return (
            "dev/staging/prod exception does not apply: not labelled in both name and "
            f"description: {', '.join(unlabeled)}"
        )
    return "dev/staging/prod exception does not apply: a label is used twice"
