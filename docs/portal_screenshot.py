"""Take the developer portal's screenshot of the README, from a real case and a real e-mail.

Drives a spam case to its change request with the sweeper, delivers it to a mail folder,
serves the portal and opens the link of the delivered ``.eml`` in headless Chromium
(Debian's ``chromium`` and ``chromium-driver``) at a phone's width. Run from the checkout::

    .venv/bin/python docs/portal_screenshot.py     # writes docs/images/portal-case-page.png
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

IMAGES = Path(__file__).resolve().parent / "images"
WIDTH = 430


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ.update(
            {
                "CASEWARD_SIMULATION": "true",
                "CASEWARD_DATABASE_URL": f"sqlite:///{home / 'caseward.db'}",
                "CASEWARD_EMAIL__MAIL_DIR": str(home / "mail"),
                "CASEWARD_EMAIL__PLATFORM_NAME": "Acme API",
            }
        )
        from cases.core.db import Base, get_engine
        from tests.factories import TIMES
        from tests.portal_browser import browser, changes_requested, link_in_eml, serving
        from tests.prefect_processes import free_port

        port = free_port()
        os.environ["CASEWARD_PORTAL__BASE_URL"] = f"http://127.0.0.1:{port}"
        Base.metadata.create_all(get_engine())
        changes_requested(get_engine())
        os.environ["CASEWARD_NOW"] = (TIMES["request"] + timedelta(days=3)).isoformat()
        page = browser(WIDTH, 900)
        try:
            with serving(port) as base:
                page.get(base + link_in_eml(home / "mail", "feature_change_request"))
                height = int(page.execute_script("return document.body.scrollHeight"))
                page.set_window_size(WIDTH, min(height + 120, 2600))
                IMAGES.mkdir(exist_ok=True)
                page.save_screenshot(str(IMAGES / "portal-case-page.png"))
        finally:
            page.quit()
    print(f"screenshot written to {IMAGES / 'portal-case-page.png'}")


if __name__ == "__main__":
    main()
