"""What a developer e-mail says, as plain data: the context every template renders from.

The wording is in ``templates/email/`` (templates, partials and ``catalog.toml``); this module
only gathers the facts a template needs. No ORM object reaches a template.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cases.core.enums import EmailTemplate, TargetType
from cases.core.models import App, Case, Developer
from cases.core.settings import Settings, get_settings
from cases.email.findings import found_for, own_targets
from cases.email.render import RenderedEmail, Renderer, get_renderer
from cases.portal.links import personal_links

# e-mails whose step starts a deadline on delivery, and the setting of its length
DUE_AFTER = {
    EmailTemplate.OUTREACH: "outreach_response_days",
    EmailTemplate.FEATURE_CHANGE_REQUEST: "change_days",
}


def renderer_for(settings: Settings) -> Renderer:
    """The renderer of the configured template folder."""
    return get_renderer(settings.email.template_dir)


def case_ref(case_id: int, settings: Settings) -> str:
    """The reference a developer quotes, e.g. ``CW-42``; it opens every subject."""
    return f"{settings.email.case_ref_prefix}{case_id}"


def _web_link(url: str) -> str | None:
    """``url`` if it is safe to put in an ``href`` (http/https only, never ``javascript:``)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in {"http", "https"} and parts.netloc else None


def one_line(text: str) -> str:
    """Developer-controlled text shown inline: line breaks and runs of spaces collapse."""
    return " ".join(str(text).split())


def _app_data(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": one_line(app.name),
        "description": one_line(app.description or ""),
        "website": app.website or "",
        "website_url": _web_link(app.website or ""),
    }


def _actions(
    actions: Iterable[Mapping[str, Any]], apps: Iterable[App], developers: Iterable[Developer]
) -> list[dict[str, str]]:
    names = {(TargetType.APP.value, a.id): one_line(a.name) for a in apps}
    names.update({(TargetType.ACCOUNT.value, d.id): one_line(d.handle) for d in developers})
    return [
        {
            "kind": str(action["kind"]),
            "target_type": str(action["target_type"]),
            "target_id": str(action["target_id"]),
            "target_name": names.get(
                (str(action["target_type"]), str(action["target_id"])), str(action["target_id"])
            ),
        }
        for action in actions
    ]


def policy_link(policy: str, settings: Settings, catalog: Mapping[str, Any]) -> str:
    """The policy page a case cites: the policy URL and the policy's anchor."""
    anchor = catalog["policies"][policy].get("anchor", policy)
    return f"{settings.email.policy_url}#{anchor}"


def shared_context(
    *,
    case: Case,
    template: EmailTemplate | str,
    now: datetime,
    extra: Mapping[str, Any] | None,
    settings: Settings,
    catalog: Mapping[str, Any],
) -> dict[str, Any]:
    """The part of the context every developer of ``case`` shares (built once per e-mail).

    The outreach and the change request state their deadlines: counted from now, when they
    are written, these are never later than the deadlines recorded when they are delivered.
    """
    email = settings.email
    change_days = case.change_days or settings.deadlines.change_days  # shorter: repeat offender
    policy = dict(catalog["policies"][case.policy])
    policy["url"] = policy_link(case.policy, settings, catalog)
    context: dict[str, Any] = {
        "case": {
            "id": case.id,
            "ref": case_ref(case.id, settings),
            "policy": case.policy,
            "status": str(case.status),
        },
        "policy": policy,
        "platform": {"name": email.platform_name},
        "sender": {"name": email.sender_name, "address": email.sender},
        "links": {"policy": email.policy_url},
        "days": {
            "outreach_response": settings.deadlines.outreach_response_days,
            "change": change_days,
            "extension": settings.deadlines.extension_days,
            "appeal_window": settings.deadlines.appeal_window_days,
            "strike_window": settings.strikes.window_days,
        },
        "tz": email.timezone,
        "now": now,
        "template": str(template),
    }
    if template in DUE_AFTER:
        days = getattr(settings.deadlines, DUE_AFTER[EmailTemplate(template)])
        if template == EmailTemplate.FEATURE_CHANGE_REQUEST:
            days = change_days
        context["deadline"] = now + timedelta(days=days)
    for key, value in (extra or {}).items():
        if key == "actions":
            context["actions"] = _actions(value, case.apps, case.developers)
        elif key == "reason":
            context["enforcement_reason"] = value
        else:
            context[key] = value
    return context


def developer_context(
    shared: Mapping[str, Any], case: Case, developer: Developer, settings: Settings
) -> dict[str, Any]:
    """``shared`` plus what differs per recipient: the developer, their own apps, what was
    found about them, what was done to them and their personal link to the portal. Another
    party of the case is only ever a count (:mod:`cases.email.findings`)."""
    own_apps = [a for a in case.apps if a.developer_id == developer.id]
    context = {
        **shared,
        "apps": [_app_data(a) for a in own_apps],
        "other_app_count": len(case.apps) - len(own_apps),
        "other_account_count": len(case.developers) - 1,
        "found": found_for(case, developer, own_apps, settings.detection),
        # this developer's own strikes when the case was confirmed (never another's)
        "strikes": int((case.prior_strikes or {}).get(developer.id, 0)),
        "developer": {
            "id": developer.id,
            "handle": one_line(developer.handle),
            "email": developer.email,
        },
        "links": {
            **shared["links"],
            **personal_links(case, developer.id, now=shared["now"], settings=settings),
        },
    }
    if "actions" in shared:
        context["actions"] = own_targets(shared["actions"], own_apps, developer)
    return context


def build_context(
    *,
    case: Case,
    developer: Developer,
    template: EmailTemplate | str,
    now: datetime,
    extra: Mapping[str, Any] | None,
    settings: Settings,
    catalog: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything a template may use, as plain data (no ORM object reaches a template).

    ``extra`` keys are passed through (``changes``, ``deadline``, ``old_deadline``,
    ``new_deadline``, ``decision_reason``, ``urgent``, ``approval_reason``); ``actions`` get
    their targets' names (each recipient reads only their own) and ``reason`` becomes
    ``enforcement_reason``. A key a template needs but nobody supplied is
    an error at render time, never a blank.
    """
    shared = shared_context(
        case=case, template=template, now=now, extra=extra, settings=settings, catalog=catalog
    )
    return developer_context(shared, case, developer, settings)


def render_for(
    *,
    case: Case,
    developer: Developer,
    template: EmailTemplate | str,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> RenderedEmail:
    """Subject, text and HTML of ``template`` for one developer of ``case``."""
    settings = settings or get_settings()
    renderer = renderer_for(settings)
    context = build_context(
        case=case,
        developer=developer,
        template=template,
        now=now,
        extra=extra,
        settings=settings,
        catalog=renderer.catalog,
    )
    return renderer.render(template, context)
