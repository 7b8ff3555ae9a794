"""A real browser on the portal: Debian's chromium through Selenium, the app under uvicorn.

Used by tests/test_portal_browser.py and docs/portal_screenshot.py. The case is driven by
the sweeper and delivered by the file backend, so the link a test opens is the one a
developer finds in a real ``.eml``.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from sqlalchemy import Engine

from cases.core.db import session_scope
from cases.core.settings import get_settings
from cases.email.delivery import deliver_pending
from cases.lifecycle import operations, sweeper
from caseward.web.app import create_app
from tests import factories
from tests.conftest import reset_caches
from tests.portal_fixtures import link_in

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
PHONE = (390, 844)  # CSS pixels of a common phone


def missing_browser() -> str | None:
    """Why no browser test can run here, or None."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not absent:
        return None
    return (
        f"{' and '.join(absent)} not found: install Debian's browser with "
        "`apt-get install -y chromium chromium-driver` (.ci/run does it)"
    )


def browser(width: int, height: int) -> webdriver.Chrome:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@contextmanager
def serving(port: int) -> Iterator[str]:
    """The portal at the current settings (``CASEWARD_NOW`` included) on ``port``."""
    reset_caches()
    config = uvicorn.Config(
        create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def advance_and_deliver(engine: Engine, now: datetime) -> None:
    """One sweep and one delivery run at ``now``, through the file backend."""
    sweeper.advance(engine, now=now)
    report = deliver_pending(engine, now=now)
    assert not report.stopped, report.stopped


def changes_requested(engine: Engine) -> int:
    """A spam case whose change request (due day 45) was delivered to the mail folder."""
    with session_scope(engine) as session:
        case_id = factories.open_case(session).id
        operations.confirm(
            session, case_id=case_id, actor="lead-ann", reason="reviewed", now=factories.T0
        )
    advance_and_deliver(engine, factories.T0)
    advance_and_deliver(engine, factories.TIMES["request"])
    return case_id


def link_in_eml(mail_dir: Path, template: str) -> str:
    """The personal link (a path) of the latest ``.eml`` of ``template``."""
    found = sorted(mail_dir.rglob(f"*-{template}.eml"))
    assert found, f"no {template} e-mail in {mail_dir}"
    message = email.message_from_bytes(found[-1].read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    return link_in(text.get_content())
