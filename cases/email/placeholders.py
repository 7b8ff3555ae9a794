"""E-mail settings a deployment must change before a real developer reads an e-mail.

The defaults (links on ``developer.example.com`` and ``127.0.0.1``, a sender at
``caseward.local``, the name "Example Platform") make the demo and the tests work and would
give a real developer dead links and an address nobody reads. Outside simulation, delivery
refuses to start while any of them is left as it is.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cases.core.errors import CasewardError
from cases.core.settings import EmailSettings, PortalSettings, Settings, env_name

# reserved for documentation and local networks (RFC 2606, RFC 6761, RFC 6762)
_PLACEHOLDER_SUFFIXES = (".example", ".invalid", ".test", ".localhost", ".local")
_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org", "localhost")


class EmailNotConfigured(CasewardError):
    """Delivery would send placeholder links or a placeholder sender to real developers."""


def placeholder_domain(domain: str) -> bool:
    """Whether ``domain`` names no real service (an example or local name)."""
    name = domain.strip().lower().rstrip(".")
    return (
        not name
        or name.endswith(_PLACEHOLDER_SUFFIXES)
        or any(name == d or name.endswith("." + d) for d in _PLACEHOLDER_DOMAINS)
    )


def placeholder_settings(email: EmailSettings) -> list[str]:
    """The e-mail settings (as dotted names) that still hold a placeholder value."""
    found = []
    if placeholder_domain(urlsplit(email.policy_url).hostname or ""):
        found.append("email.policy_url")
    for name in ("sender", "reply_to"):
        address = getattr(email, name)
        if address is not None and placeholder_domain(address.rpartition("@")[2]):
            found.append(f"email.{name}")
    if email.platform_name == EmailSettings.model_fields["platform_name"].default:
        found.append("email.platform_name")
    return found


def placeholder_portal(portal: PortalSettings) -> list[str]:
    """``portal.base_url`` when no developer could open it (this machine, an example name)."""
    host = (urlsplit(portal.base_url).hostname or "").lower()
    local = host.startswith("127.") or host in {"::1", "0.0.0.0"}
    return ["portal.base_url"] if local or placeholder_domain(host) else []


def refuse_placeholders(settings: Settings) -> None:
    """Raise :class:`EmailNotConfigured` (one line) when e-mail would reach a real developer
    with a placeholder setting; in simulation nothing reaches a real developer."""
    if settings.simulation:
        return
    names = placeholder_settings(settings.email) + placeholder_portal(settings.portal)
    if names:
        raise EmailNotConfigured(
            "refusing to send e-mail: set "
            + ", ".join(env_name(n) for n in names)
            + " (still the placeholder defaults), or run in simulation (CASEWARD_SIMULATION=true)"
        )
