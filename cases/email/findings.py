"""What one developer may read of a case's evidence: their own apps, accounts and rows.

Detection writes evidence for leads: every party of the case, similarity scores and the
thresholds each figure was measured against. An e-mail tells each recipient the facts about
*their own* apps, as plain data for the sentences and the short table of
``templates/email/partials/found/<policy>.*.j2``; other parties appear only as counts, and
no threshold, score, account link or other party's identifier leaves this module.
Evidence of an unexpected shape gives no facts rather than an error: the e-mail then says
what was found in the policy's words, and the lead's own notes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from string import ascii_uppercase
from typing import Any
from urllib.parse import urlsplit

from cases.core.clock import parse_instant
from cases.core.enums import Policy
from cases.core.models import App, Case, Developer
from cases.core.settings import DetectionSettings

Facts = dict[str, Any]

# rows a table shows at most: the ones that matter most, in time order
MAX_ROWS = 6


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return parse_instant(str(value))
    except ValueError:
        return None


def _number(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _host(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "").removeprefix("www.")
    except ValueError:
        return ""


def _spam(evidence: Mapping[str, Any], own: Sequence[App], _: Case, __: DetectionSettings) -> Facts:
    app_id = evidence["app"]["app_id"]
    app = next(a for a in own if a.id == app_id)
    by_reason = evidence["by_reason"]
    posts = _number(evidence["posts"])
    per_1000 = round(float(evidence["reports_per_1000_posts"]), 1)
    spam, automation = _number(by_reason.get("spam")), _number(by_reason.get("automation"))
    return {
        "app": app.name,
        "reports": _number(evidence["flagged_reports"]),
        "posts": posts,
        "per_1000": per_1000,
        "start": _instant(evidence["window"]["from"]),
        "end": _instant(evidence["window"]["to"]),
        # App, Posts, Reported as spam, As automation, Per 1,000 posts
        "rows": [[app.name, posts, spam, automation, per_1000]],
    }


def _exception_breach(apps: Sequence[Mapping[str, Any]], max_apps: int) -> str:
    """Why the dev/staging/prod exception does not cover the group (a key the template words)."""
    if len({a["developer_id"] for a in apps}) > 1:
        return "several_accounts"
    if len(apps) > max_apps:
        return "too_many"
    labels = [a.get("environment_label") for a in apps]
    if any(label is None for label in labels):
        return "unlabelled"
    return "label_repeated" if len(set(labels)) < len(labels) else "unlabelled"


def _duplicate_apps(
    evidence: Mapping[str, Any], own: Sequence[App], case: Case, detection: DetectionSettings
) -> Facts:
    listed = {a["app_id"]: a for a in evidence["apps"]}
    mine = {a.id for a in own}
    hosts: set[str] = set()
    names = descriptions = False
    linked_others: set[str] = set()
    for link in evidence["links"]:
        pair = set(link["apps"])
        if not pair & mine:
            continue
        linked_others |= pair - mine
        hosts.update(link.get("shared_hosts", []))
        names |= link.get("name_similarity", 0) >= detection.duplicate_name_similarity
        descriptions |= (
            link.get("description_similarity", 0) >= detection.duplicate_description_similarity
        )
    others = [a for a in case.apps if a.id not in mine]
    return {
        "apps": [{"name": a.name, "id": a.id, "description": a.description} for a in own],
        # App, App id, Registered, Website, Label
        "rows": [
            [
                a.name,
                a.id,
                a.created_at.date(),
                _host(a.website) or None,
                listed.get(a.id, {}).get("environment_label"),
            ]
            for a in own
        ],
        "shared_hosts": sorted(hosts),
        "similar_names": names,
        "similar_descriptions": descriptions,
        "other_apps": len(linked_others) or len(others),
        "other_accounts": len({a.developer_id for a in others}),
        "exception": _exception_breach(
            list(listed.values()), detection.duplicate_exception_max_apps
        ),
    }


def _letters(own: Sequence[App]) -> dict[str, str]:
    return {app.id: ascii_uppercase[i % 26] for i, app in enumerate(own)}


def _rate_limit_circumvention(
    evidence: Mapping[str, Any], own: Sequence[App], case: Case, _: DetectionSettings
) -> Facts:
    key = _letters(own)
    other_party = [a for a in case.apps if a.id not in key]
    limits: dict[str, int] = {}
    hours: list[tuple[float, datetime, list[Any]]] = []  # times the limit, hour, table row
    for hour in evidence["hours"]:
        requests = {a["app_id"]: _number(a["requests"]) for a in hour["apps"]}
        limits.update({a["app_id"]: _number(a["own_limit"]) for a in hour["apps"]})
        at = _instant(hour["hour"])
        if at is None or not requests.keys() & key.keys():
            continue
        others = [n for app_id, n in requests.items() if app_id not in key]
        # Hour, one column per own app, Others (when the case has any), Together, Limit
        row = [
            at,
            *(requests.get(app.id) for app in own),
            *([sum(others) or None] if other_party else []),
            _number(hour["combined_requests"]),
            _number(hour["one_app_limit"]),
        ]
        hours.append((float(hour["times_limit"]), at, row))
    moves = []
    for move in evidence["handoffs"]:
        limits.setdefault(move["to_app"], _number(move["to_own_limit"]))
        if move["from_app"] not in key and move["to_app"] not in key:
            continue
        # Hour, Limited app, Refused before, Next app, Its requests, Its limit
        moves.append(
            [
                _instant(move["hour"]),
                key.get(move["from_app"]),
                _number(move["from_rate_limited_previous_hour"]),
                key.get(move["to_app"]),
                _number(move["to_requests"]),
                _number(move["to_own_limit"]),
            ]
        )
    shown = sorted(sorted(hours, key=lambda h: -h[0])[:MAX_ROWS], key=lambda h: h[1])
    return {
        "apps": [
            {"key": key[a.id], "name": a.name, "id": a.id, "limit": limits.get(a.id)} for a in own
        ],
        "hour_rows": [row for _, _, row in shown],
        "hours_total": len(hours),
        "peak": round(max((times for times, _, _ in hours), default=0.0), 1),
        "first": min((at for _, at, _ in hours), default=None),
        "last": max((at for _, at, _ in hours), default=None),
        "handoff_rows": moves[:MAX_ROWS],
        "handoffs_total": len(moves),
        "other_apps": len(other_party),
        "other_accounts": len({a.developer_id for a in other_party}),
    }


def _user_supplied_keys(
    evidence: Mapping[str, Any], own: Sequence[App], case: Case, _: DetectionSettings
) -> Facts:
    seen_as = sorted({kind for host in evidence["service_hosts"] for kind in host["seen_as"]})
    return {
        "hosts": [h["host"] for h in evidence["service_hosts"]],
        "seen_as": seen_as,
        "apps": [{"name": a.name, "id": a.id} for a in own],
        # App, App id, Registered
        "rows": [[a.name, a.id, a.created_at.date()] for a in own],
        "other_accounts": len(case.developers) - 1,
    }


PRESENTERS = {
    Policy.SPAM: _spam,
    Policy.DUPLICATE_APPS: _duplicate_apps,
    Policy.RATE_LIMIT_CIRCUMVENTION: _rate_limit_circumvention,
    Policy.USER_SUPPLIED_KEYS: _user_supplied_keys,
}


def notes(evidence: Mapping[str, Any]) -> list[str]:
    """What leads recorded as evidence (``cases add-evidence``), the text only."""
    recorded = evidence.get("notes")
    if not isinstance(recorded, list):
        return []
    return [str(n["note"]) for n in recorded if isinstance(n, Mapping) and n.get("note")]


def found_for(
    case: Case, developer: Developer, own: Sequence[App], detection: DetectionSettings
) -> Facts:
    """What ``developer`` reads under "What we found".

    ``facts``: the detector's finding about their own apps (None for evidence of another
    shape); ``reason``: the lead's own words when a lead opened the case; ``notes``: leads'
    recorded observations.
    """
    facts = None
    evidence = case.evidence or {}
    if case.source == "detection" and own:
        try:
            facts = PRESENTERS[Policy(case.policy)](evidence, own, case, detection)
        except (KeyError, TypeError, ValueError, StopIteration, AttributeError):
            facts = None
    return {
        "facts": facts,
        "reason": None if case.source == "detection" else case.reason,
        "notes": notes(evidence),
    }


def own_targets(
    actions: Iterable[Mapping[str, str]], own: Sequence[App], developer: Developer
) -> list[Mapping[str, str]]:
    """The enforcement actions on the recipient's own apps and account."""
    mine = {("app", a.id) for a in own} | {("account", developer.id)}
    return [a for a in actions if (a["target_type"], a["target_id"]) in mine]
