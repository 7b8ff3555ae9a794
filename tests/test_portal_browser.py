"""A developer answers in a real browser: the link of a delivered ``.eml`` opens the case
page in headless chromium (phone-sized, no JavaScript needed); they report compliance, and,
once enforced, appeal. Marked ``browser``; it fails (never skips) where chromium is missing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import CaseStatus
from cases.core.models import Appeal, CaseEvent
from cases.lifecycle import operations, service
from tests.factories import TIMES
from tests.portal_browser import (
    PHONE,
    advance_and_deliver,
    browser,
    changes_requested,
    link_in_eml,
    missing_browser,
    serving,
)
from tests.prefect_processes import free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def page() -> WebDriver:
    why = missing_browser()
    if why is not None:
        pytest.fail(why)
    driver = browser(*PHONE)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _send(driver: WebDriver, action: str, statement: str, **inputs: str) -> None:
    form = driver.find_element(By.CSS_SELECTOR, f"form[action$='/{action}']")
    field = form.find_element(By.ID, f"{action}-statement")
    label = form.find_element(By.CSS_SELECTOR, f"label[for='{action}-statement']")
    assert label.text  # a labelled field
    field.send_keys(statement)
    for name, value in inputs.items():
        form.find_element(By.NAME, name).send_keys(value)
    _follow(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))


def _follow(driver: WebDriver, element: WebElement) -> None:
    """Click ``element`` and wait until the page it leads to has replaced this one (a click
    returns once the navigation starts, which on a busy machine is before the new page)."""
    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(element))


def _fits_the_phone(driver: WebDriver) -> bool:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    return int(width) <= int(driver.execute_script("return window.innerWidth"))


def test_a_developer_reports_compliance_then_appeals_from_the_e_mail_link(
    sqlite_engine: Engine,
    isolated_settings: Path,
    page: WebDriver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("CASEWARD_PORTAL__BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CASEWARD_DATABASE_URL", str(sqlite_engine.url))
    case_id = changes_requested(sqlite_engine)
    mail = isolated_settings / "mail"

    monkeypatch.setenv("CASEWARD_NOW", (TIMES["request"] + timedelta(days=3)).isoformat())
    with serving(port) as base:
        page.get(base + link_in_eml(mail, "feature_change_request"))
        assert "Limit how many posts one user can create" in page.page_source
        assert _fits_the_phone(page)
        _send(
            page,
            "compliance",
            "Posting is now limited per user.",
            url="https://app.example.net/changelog",
        )
        assert page.find_element(By.TAG_NAME, "h1").text == "Received"
        _follow(page, page.find_element(By.LINK_TEXT, "Back to your case page"))
        assert "You reported that the changes are made." in page.page_source

    # the lead finds the changes incomplete; the new deadline passes; the app is restricted
    with session_scope(sqlite_engine) as session:
        operations.reject_compliance(
            session,
            case_id=case_id,
            actor="lead-ann",
            reason="posting is still unlimited",
            now=TIMES["request"] + timedelta(days=4),
        )
    advance_and_deliver(sqlite_engine, TIMES["request"] + timedelta(days=4))
    advance_and_deliver(sqlite_engine, TIMES["request"] + timedelta(days=40))
    with session_scope(sqlite_engine) as session:
        assert service.get_or_raise(session, case_id=case_id).status is CaseStatus.ENFORCED

    monkeypatch.setenv("CASEWARD_NOW", (TIMES["request"] + timedelta(days=42)).isoformat())
    with serving(port) as base:
        page.get(base + link_in_eml(mail, "token_revoked").replace("#appeal", ""))
        assert page.find_element(By.ID, "appeal")
        assert _fits_the_phone(page)
        _send(page, "appeal", "We limited posting; please look again.")
        assert page.find_element(By.TAG_NAME, "h1").text == "Received"
        page.refresh()  # the browser sends the form again: nothing is recorded twice
        assert page.find_element(By.TAG_NAME, "h1").text in {"Received", "Already received"}

    with session_scope(sqlite_engine) as session:
        appeal = session.scalars(select(Appeal)).one()
        assert appeal.statement == "We limited posting; please look again."
        reports = session.scalars(
            select(CaseEvent).where(CaseEvent.kind == "report_compliance")
        ).all()
        assert [r.data.get("url") for r in reports] == ["https://app.example.net/changelog"]
        assert service.get_or_raise(session, case_id=case_id).status is CaseStatus.APPEALED
