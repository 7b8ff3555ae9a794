"""Outside simulation, no e-mail leaves with placeholder links, sender or platform name."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cases.core.db import Base, get_engine
from cases.core.enums import OutboxStatus
from cases.core.settings import EmailSettings, PortalSettings, get_settings
from cases.email.placeholders import placeholder_domain, placeholder_portal, placeholder_settings
from caseward.cli import main
from tests.test_outbox_delivery import queue, rows

REAL = {
    "CASEWARD_PORTAL__BASE_URL": "https://cases.acme.io",
    "CASEWARD_EMAIL__POLICY_URL": "https://developers.acme.io/policy",
    "CASEWARD_EMAIL__SENDER": "trust@acme.io",
    "CASEWARD_EMAIL__PLATFORM_NAME": "Acme API",
}


@pytest.fixture
def engine() -> Engine:
    engine = get_engine()
    Base.metadata.create_all(engine)
    return engine


def test_defaults_are_placeholders_and_real_values_are_not() -> None:
    assert placeholder_settings(EmailSettings()) == [
        "email.policy_url",
        "email.sender",
        "email.platform_name",
    ]
    real = EmailSettings(
        policy_url="https://developers.acme.io/policy",
        sender="trust@acme.io",
        reply_to="cases@mail.example.org",
        platform_name="Acme API",
    )
    assert placeholder_settings(real) == ["email.reply_to"]
    assert placeholder_portal(PortalSettings()) == ["portal.base_url"]  # 127.0.0.1
    assert placeholder_portal(PortalSettings(base_url="https://cases.acme.io/")) == []
    assert [placeholder_domain(d) for d in ("acme.io", "x.local", "platform.example", "")] == [
        False,
        True,
        True,
        True,
    ]


@pytest.mark.parametrize("command", [["outbox", "send"], ["advance"]], ids=" ".join)
def test_outside_simulation_delivery_refuses_placeholders_in_one_line(
    engine: Engine,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    isolated_settings: Path,
) -> None:
    queue(engine)
    monkeypatch.setenv("CASEWARD_SIMULATION", "false")
    monkeypatch.setenv("CASEWARD_EMAIL__SENDER", "trust@acme.io")
    get_settings.cache_clear()
    assert main(command) == 1  # real time: simulated time is refused outside simulation
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "delivery stopped: refusing to send e-mail: set " in error
    for name in ("EMAIL__POLICY_URL", "EMAIL__PLATFORM_NAME", "PORTAL__BASE_URL"):
        assert f"CASEWARD_{name}" in error
    assert "CASEWARD_EMAIL__SENDER" not in error  # it was set to a real address
    assert [m.status for m in rows(engine)] == [OutboxStatus.PENDING]  # nothing was sent
    assert not list((isolated_settings / "mail").glob("*.eml"))


def test_with_real_settings_delivery_goes_out(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, isolated_settings: Path
) -> None:
    queue(engine)
    monkeypatch.setenv("CASEWARD_SIMULATION", "false")
    for name, value in REAL.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    assert main(["outbox", "send"]) == 0
    assert [m.status for m in rows(engine)] == [OutboxStatus.SENT]
    assert len(list((isolated_settings / "mail").glob("*.eml"))) == 1
