"""User-supplied keys: one service registered as apps by many unrelated developer accounts.

Policy (shared/seeds, "multiple applications for the same use case"): "Developers should
never request that end users register and provide their own Twitter application consumer
keys and secrets to their application in an effort to circumvent this, which may result in
enforcement action against both the developer and their users." Operational definition
(docs/platform-data.md): "one service (the same website or callback host) registered as
separate apps by many distinct, unlinked developer accounts ... Default: 5 or more accounts."

Accounts are counted as parties, so linked accounts count once. Hosts are service hosts
(see hosts.py: placeholders, loopback and bare shared-hosting domains never count). Hosts
whose app sets overlap become one finding. Score: distinct parties; severity from score /
``user_keys_min_accounts``.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb

from cases.core.enums import Policy
from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding, severity_for
from cases.detection.parties import UnionFind

HOSTS_SQL = """
SELECT h.host, count(DISTINCT a.party_id) AS parties
FROM app_hosts h JOIN active_apps a USING (app_id)
GROUP BY h.host HAVING count(DISTINCT a.party_id) >= $min_accounts
"""

MEMBERS_SQL = """
SELECT h.host, h.app_id, list(DISTINCT h.source ORDER BY h.source) AS sources,
       a.developer_id, d.handle, a.party_id, a.name, a.created_at
FROM app_hosts h JOIN flagged_hosts f USING (host)
JOIN active_apps a USING (app_id) JOIN developers d USING (developer_id)
GROUP BY ALL ORDER BY h.host, a.created_at, h.app_id
"""


def detect(con: duckdb.DuckDBPyConnection, settings: DetectionSettings) -> list[Finding]:
    """One finding per service (hosts sharing apps are one service)."""
    minimum = settings.user_keys_min_accounts
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE flagged_hosts AS {HOSTS_SQL}", {"min_accounts": minimum}
    )
    rows = con.execute(MEMBERS_SQL).fetchall()
    sets = UnionFind()
    for host, app_id, *_rest in rows:
        sets.union("h:" + host, "a:" + app_id)
    services: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    for row in rows:
        services[sets.find("h:" + str(row[0]))].append(tuple(row))
    return [_finding(members, settings) for _root, members in sorted(services.items())]


def _finding(members: list[tuple[object, ...]], settings: DetectionSettings) -> Finding:
    minimum = settings.user_keys_min_accounts
    cap = settings.evidence_max_items * 4
    hosts: dict[str, set[str]] = defaultdict(set)
    accounts: dict[str, dict[str, object]] = {}
    parties: set[str] = set()
    app_ids: set[str] = set()
    for host, app_id, sources, developer_id, handle, party_id, name, created_at in members:
        hosts[str(host)].update(str(s) for s in (sources or []))  # type: ignore[attr-defined]
        parties.add(str(party_id))
        app_ids.add(str(app_id))
        account = accounts.setdefault(
            str(developer_id),
            {"developer_id": developer_id, "handle": handle, "party_id": party_id, "apps": []},
        )
        app_list = account["apps"]
        assert isinstance(app_list, list)
        if all(a["app_id"] != app_id for a in app_list):
            app_list.append({"app_id": app_id, "name": name, "created_at": created_at})
    host_names = sorted(hosts)
    count = len(parties)
    listed = sorted(accounts.values(), key=lambda a: str(a["developer_id"]))
    evidence = {
        "summary": (
            f"{', '.join(host_names)} registered as {len(app_ids)} apps by {count} unlinked "
            f"accounts (threshold {minimum})"
        ),
        "service_hosts": [{"host": h, "seen_as": sorted(hosts[h])} for h in host_names],
        "distinct_parties": count,
        "threshold_accounts": minimum,
        "accounts": listed[:cap],
        "accounts_listed": min(len(listed), cap),
        "accounts_total": len(listed),
    }
    return Finding(
        policy=Policy.USER_SUPPLIED_KEYS,
        app_ids=sorted(app_ids),
        developer_ids=sorted(accounts),
        score=float(count),
        severity=severity_for(count / minimum, settings.high_severity_factor),
        reason=(
            f"User-supplied keys: {host_names[0]} is registered by {count} unlinked accounts "
            f"(threshold {minimum})"
        ),
        evidence=evidence,
    )
