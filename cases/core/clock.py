"""The time source. Domain code takes ``now`` as an argument; only the edges call here."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The real current time, timezone-aware UTC."""
    return datetime.now(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a naive value is taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def readable(value: datetime) -> str:
    """An instant as a person scans it in a log or a table: ``Fri 15 Jan 2027 09:00 UTC``."""
    utc = value.astimezone(UTC)
    return f"{utc:%a} {utc.day} {utc:%b %Y %H:%M} UTC"
