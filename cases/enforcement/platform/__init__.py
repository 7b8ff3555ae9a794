"""How enforcement reaches the platform: Caseward's own registry, or the platform's admin API."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cases.core.settings import Settings
from cases.enforcement.platform.base import ActionSpec, PlatformAdapter


def get_adapter(session: Session, settings: Settings) -> PlatformAdapter:
    """The adapter configuration selects (``platform.adapter``)."""
    if settings.platform.adapter == "http":
        from cases.enforcement.platform.http import HttpAdapter

        return HttpAdapter.from_settings(settings.platform, session=session)
    from cases.enforcement.platform.registry import RegistryAdapter

    return RegistryAdapter(session)


__all__ = ["ActionSpec", "PlatformAdapter", "get_adapter"]
