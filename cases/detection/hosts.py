"""Service hosts: what a website or callback URL says about which service an app is.

A host is the URL's host, lower-cased, without ``www.``, port or trailing dot. On a profile
or store host (``github.com``, ``apps.apple.com``; ``path_scoped_hosts``) the path names the
service, so the key is host plus path. Hosts that identify no service are dropped:
loopback and private addresses, placeholder hosts (``localhost``, ``example.com`` and their
subdomains, reserved TLDs such as ``.test``; not ``.example``, see RESERVED_TLDS), and a bare
shared hosting domain
(``herokuapp.com``). Distinct subdomains of a shared hosting domain stay distinct hosts,
as the contract requires, because the key is the full host.

Only ``http(s)`` URLs carry a host: a custom-scheme callback (``myapp://cb``) names none.
"""

from __future__ import annotations

import re

import duckdb

from cases.core.settings import DetectionSettings
from cases.detection.checks import q

# ".example" is not among them: it names the services of Caseward's generated platform
# (demo-data), which must never name a real domain; example.com/.org/.net stay placeholders
RESERVED_TLDS = ("localhost", "test", "invalid", "local", "internal", "lan", "home")
PRIVATE_IP_RE = (
    r"^(127\.|10\.|0\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)"
    r"|^\[(::1\]|::\]|fe80:|fc|fd)"
)


# scheme, user info, "www.", then the host (a bracketed IPv6 address or a name), the port,
# and the path with its query (up to the fragment): one pass over each URL
URL_PARTS_RE = (
    r"^[hH][tT][tT][pP][sS]?://(?:[^@/?#]*@)?(?:[wW][wW][wW]\.)?"
    r"(\[[^\]]*\]|[^/:?#]+)(?::[^/?#]*)?([^#]*)"
)


def _sql_values(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join(q(v.lower()) for v in values)


def placeholder_predicate(column: str, settings: DetectionSettings) -> str:
    """SQL true when the host in ``column`` identifies no service (one regular expression)."""

    def alternation(values: list[str] | tuple[str, ...]) -> str:
        return "|".join(re.escape(v.lower()) for v in values)

    pattern = (
        f"^$|^({alternation(settings.shared_hosting_suffixes)})$"
        f"|(^|\\.)({alternation(settings.placeholder_hosts)})$"
        f"|(^|\\.)({alternation(RESERVED_TLDS)})$|{PRIVATE_IP_RE}"
    )
    return f"regexp_matches({column}, {q(pattern)})"


def build_app_hosts(con: duckdb.DuckDBPyConnection, settings: DetectionSettings) -> None:
    """Create ``app_hosts(app_id, host, source)``: one row per app, service host and source."""
    scoped = _sql_values(settings.path_scoped_hosts)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE app_hosts AS
        WITH urls AS (
            SELECT app_id, 'website' AS source, trim(website) AS url
            FROM active_apps WHERE website <> ''
            UNION ALL
            SELECT app_id, 'callback' AS source, unnest(string_split(callback_urls, ' ')) AS url
            FROM active_apps WHERE callback_urls <> ''
        ),
        parsed AS (
            SELECT app_id, source, regexp_extract(url, {q(URL_PARTS_RE)}, ['host', 'path']) AS part
            FROM urls
        ),
        lowered AS (
            SELECT app_id, source, rtrim(lower(part.host), '.') AS host,
                rtrim(lower(part.path), '/') AS path
            FROM parsed
        ),
        keyed AS (
            SELECT app_id, source,
                CASE WHEN host IN ({scoped})
                     THEN CASE WHEN path = '' THEN '' ELSE host || path END
                     ELSE host END AS host
            FROM lowered
        )
        SELECT DISTINCT app_id, host, source FROM keyed
        WHERE NOT {placeholder_predicate("host", settings)}
        """
    )
