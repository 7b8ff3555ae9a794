"""The time source. Domain code takes ``now`` as an argument; only the edges call here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """The real current time, timezone-aware UTC."""
    return datetime.now(UTC)


MAX_OFFSET = timedelta(hours=18)
# simulated and stored times stay where deadlines years ahead can still be computed
YEARS = range(1970, 9000)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a naive value is taken as UTC. Offsets beyond ±18:00
    and years outside 1970-8999 are refused (ValueError)."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise ValueError(f"the UTC offset {value:%z} is beyond ±18:00")
    if value.year not in YEARS:
        raise ValueError(f"the year {value.year} is outside {YEARS.start}-{YEARS.stop - 1}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def readable(value: datetime) -> str:
    """An instant as a person scans it in a log or a table: ``Fri 15 Jan 2027 09:00 UTC``."""
    utc = value.astimezone(UTC)
    return f"{utc:%a} {utc.day} {utc:%b %Y %H:%M} UTC"
