"""Take the Prefect UI screenshots of docs/orchestration.md, from a real run.

Prepares cases past their deadlines with the CLI, starts ``caseward serve`` with every-minute
schedules, waits for the approve-enforcement and review-appeal runs to wait for a lead, and
photographs, in headless Chromium (Debian's ``chromium`` and ``chromium-driver``), the open
approval form, the open appeal form and the case artifact. Run from the checkout::

    .venv/bin/python docs/screenshots.py          # writes docs/images/*.png (about 3 minutes)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.prefect_processes import (
    CASEWARD,
    PrefectApi,
    environment,
    free_port,
    healthy,
    prefect_yaml_every_minute,
    prepare_cases,
    start,
    stop,
    wait_for,
)

IMAGES = Path(__file__).resolve().parent / "images"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def browser(height: int) -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--window-size=1400,{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def click(page: webdriver.Chrome, tag: str, text: str) -> None:
    """Click the first ``tag`` element whose text starts with ``text``."""
    for element in page.find_elements(By.TAG_NAME, tag):
        if element.text.strip().startswith(text):
            element.click()
            return
    raise LookupError(f"no <{tag}> reading {text!r} on {page.current_url}")


def form(ui: str, run_id: str, image: str) -> None:
    """The paused run's page with its Resume form open."""
    page = browser(2200)
    try:
        page.get(f"{ui}/runs/flow-run/{run_id}")
        time.sleep(6)
        click(page, "button", "Resume")
        time.sleep(4)
        page.save_screenshot(str(IMAGES / image))
    finally:
        page.quit()


def artifact(ui: str, case_id: int, image: str) -> None:
    """The latest version of the case's ``case-<id>`` artifact."""
    page = browser(2000)
    try:
        page.get(f"{ui}/artifacts/key/case-{case_id}")
        time.sleep(5)
        page.find_elements(By.CSS_SELECTOR, "a[href*='/artifacts/artifact/']")[0].click()
        time.sleep(5)
        page.save_screenshot(str(IMAGES / image))
    finally:
        page.quit()


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="caseward-shots-") as folder:
        work = Path(folder)
        env = environment(work)
        waiting, appealed = prepare_cases(env, work)
        port = free_port()
        deployments = prefect_yaml_every_minute(work / "prefect.yaml")
        command = [*CASEWARD, "serve", "--port", str(port), "--deployments", str(deployments)]
        served = start(command, env, work, work / "serve.log")
        try:
            api = PrefectApi(f"http://127.0.0.1:{port}/api")
            wait_for("the Prefect server", lambda: healthy(api), 120, every=1)
            approval = wait_for(
                "an approval form", lambda: api.waiting("approve-enforcement", waiting), 300
            )
            appeal = wait_for("an appeal form", lambda: api.waiting("review-appeal", appealed), 300)
            ui = f"http://127.0.0.1:{port}"
            form(ui, approval["id"], "approve-enforcement-form.png")
            form(ui, appeal["id"], "review-appeal-form.png")
            artifact(ui, waiting, "case-artifact.png")
        finally:
            stop(served)
    print(f"screenshots written to {IMAGES}")


if __name__ == "__main__":
    main()
