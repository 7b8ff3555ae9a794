"""Personal links: a URL that opens one developer's view of one case until it expires.

A token is 50 base64url characters: a payload naming the case, the developer (a digest of
their id) and the expiry day, then 128 bits of HMAC-SHA256 of the payload under
``portal.secret_key``. Links signed with one of ``portal.previous_keys`` are still accepted,
so a key can be rotated without breaking the links already e-mailed. Expiry is business time
(the one clock): a link outlives the appeal window by ``portal.link_grace_days``.

A token is a credential: it never reaches a log (log the case id) and a page that shows it
sends no Referer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cases.core.enums import CaseStatus
from cases.core.models import Case
from cases.core.settings import PortalSettings, Settings

# Simulation mode may run without a key of its own: its links reach no real developer,
# so a key anyone can read is good enough there (the settings refuse it elsewhere).
SIMULATION_KEY = "caseward-simulation-mode-portal-key-not-a-secret"
PURPOSE = b"caseward-portal-link\x00"
DAY = 86_400
VERSION = 1
REF_BYTES = 8
MAC_BYTES = 16  # 128 bits of HMAC-SHA256
# version, case id, expiry (days since 1970), developer reference
LAYOUT = struct.Struct(f">BQI{REF_BYTES}s")
TOKEN_CHARS = -(-(LAYOUT.size + MAC_BYTES) * 4 // 3)
# statuses whose appeal window is still ahead: a link from their e-mails must outlive the
# deadlines still to run before an enforcement could open it
BEFORE_ENFORCEMENT = frozenset(
    {
        CaseStatus.OPENED,
        CaseStatus.CONFIRMED,
        CaseStatus.OUTREACH_SENT,
        CaseStatus.CHANGES_REQUESTED,
        CaseStatus.COMPLIANCE_REPORTED,
        CaseStatus.ENFORCEMENT_DUE,
    }
)


@dataclass(frozen=True)
class LinkClaims:
    """What a valid token says: whose view of which case, until when. The developer is
    named by a digest of their id (:func:`developer_ref`), which keeps links short and the
    platform's ids out of URLs."""

    case_id: int
    developer_ref: bytes
    expires_at: datetime

    def names(self, developer_id: str) -> bool:
        """Whether the link is ``developer_id``'s."""
        return hmac.compare_digest(self.developer_ref, developer_ref(developer_id))


def developer_ref(developer_id: str) -> bytes:
    """A developer as a link names them: 8 bytes of SHA-256 of the id (the link's MAC, not
    this digest, is what makes it unforgeable; 64 bits keep a case's developers apart)."""
    return hashlib.sha256(developer_id.encode()).digest()[:REF_BYTES]


def keys(portal: PortalSettings, *, simulation: bool) -> list[bytes]:
    """The signing key first, then the keys still accepted."""
    current = portal.secret_key.get_secret_value() if portal.secret_key else None
    if current is None:
        if not simulation:  # the settings refuse this; a guard for hand-built settings
            raise ValueError("portal.secret_key is required outside simulation")
        current = SIMULATION_KEY
    return [k.encode() for k in (current, *(p.get_secret_value() for p in portal.previous_keys))]


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, PURPOSE + payload, hashlib.sha256).digest()[:MAC_BYTES]


def sign(claims: LinkClaims, key: bytes) -> str:
    """The token of ``claims`` under ``key``: 50 URL-safe characters."""
    day = -(-int(claims.expires_at.timestamp()) // DAY)
    payload = LAYOUT.pack(VERSION, claims.case_id, day, claims.developer_ref)
    return base64.urlsafe_b64encode(payload + _mac(key, payload)).rstrip(b"=").decode("ascii")


def verify(token: str, keys: list[bytes], *, now: datetime) -> LinkClaims | None:
    """The claims of a genuine, unexpired token; None for anything else (no reason given:
    an unknown, a tampered and an expired link look the same from outside)."""
    if len(token) != TOKEN_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None  # one spelling per link: the last character's spare bits are not free
    payload, mac = raw[: LAYOUT.size], raw[LAYOUT.size :]
    if not any(hmac.compare_digest(mac, _mac(key, payload)) for key in keys):
        return None
    version, case_id, day, ref = LAYOUT.unpack(payload)
    if version != VERSION:
        return None
    claims = LinkClaims(case_id, ref, datetime.fromtimestamp(day * DAY, UTC))
    return claims if now < claims.expires_at else None


def expiry(case: Case, *, now: datetime, settings: Settings) -> datetime:
    """When a link e-mailed at ``now`` stops working: the end of the appeal window the case
    could reach at the latest, plus ``portal.link_grace_days``, rounded up to a whole day.

    Before enforcement the window is counted from the last deadline still to run; once
    enforced, from the notice (its window is running, or about to start on delivery).
    """
    days = settings.deadlines
    window = timedelta(days=days.appeal_window_days)
    if case.status in BEFORE_ENFORCEMENT:
        window += timedelta(
            days=days.outreach_response_days + days.change_days + days.extension_days
        )
    end = max(now + window, case.deadline or now)
    end += timedelta(days=settings.portal.link_grace_days)
    return datetime.fromtimestamp(-(-int(end.timestamp()) // DAY) * DAY, UTC)


def case_url(token: str, settings: Settings) -> str:
    """The page a token opens."""
    return f"{settings.portal.base_url}/case/{token}"


def personal_links(
    case: Case, developer_id: str, *, now: datetime, settings: Settings
) -> dict[str, str]:
    """The links one recipient's e-mail carries: their case page, and its appeal form.

    Per recipient by nature (the token names the developer); everything else of an
    e-mail's context is shared by the case's recipients.
    """
    claims = LinkClaims(
        case.id, developer_ref(developer_id), expiry(case, now=now, settings=settings)
    )
    url = case_url(sign(claims, keys(settings.portal, simulation=settings.simulation)[0]), settings)
    return {"case": url, "appeal": f"{url}#appeal"}
