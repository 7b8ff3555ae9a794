"""Parties: a developer account plus every account linked to it through ``account_links``.

Two accounts sharing a ``(link_type, value)`` pair are linked, and links are transitive
(docs/platform-data.md). DuckDB groups the link rows; a union-find in Python joins the
groups (there is one entry per linked account, not per app or usage row). The result is the
table ``parties(developer_id, party_id)`` covering every developer; ``party_id`` is the
smallest developer id of the party, so it is stable from run to run.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa


class UnionFind:
    """Disjoint sets over strings, with path halving and the smallest id as root."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        parent = self.parent.setdefault(item, item)
        while parent != item:
            grand = self.parent[parent]
            self.parent[item] = grand
            item, parent = parent, grand
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            low, high = (ra, rb) if ra < rb else (rb, ra)
            self.parent[high] = low

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for item in self.parent:
            out.setdefault(self.find(item), []).append(item)
        return out


def build_parties(con: duckdb.DuckDBPyConnection) -> int:
    """Create ``parties``; returns how many parties have more than one account."""
    groups = con.execute(
        "SELECT list(DISTINCT developer_id) FROM account_links "
        "GROUP BY link_type, value HAVING count(DISTINCT developer_id) > 1"
    ).fetchall()
    sets = UnionFind()
    for (members,) in groups:
        first = members[0]
        for other in members[1:]:
            sets.union(first, other)
    developers = list(sets.parent)
    mapping = pa.table(
        {"developer_id": developers, "party_id": [sets.find(d) for d in developers]},
        schema=pa.schema([("developer_id", pa.string()), ("party_id", pa.string())]),
    )
    con.register("party_map_view", mapping)
    con.execute(
        "CREATE OR REPLACE TABLE parties AS SELECT d.developer_id, "
        "coalesce(m.party_id, d.developer_id) AS party_id "
        "FROM developers d LEFT JOIN party_map_view m USING (developer_id)"
    )
    con.unregister("party_map_view")
    return len({sets.find(d) for d in developers})
