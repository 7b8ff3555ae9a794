"""The portal under test: a case driven to a status, its developer's link from a real
e-mail, and the app served through Starlette's TestClient at a simulated time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.models import OutboxMessage
from cases.core.settings import get_settings
from caseward.web.app import create_app
from tests.conftest import reset_caches

LINK = re.compile(r"https?://[^/\s]+(/case/[A-Za-z0-9_-]+)")
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def link_in(text: str) -> str:
    """The path of the personal link an e-mail carries."""
    found = LINK.search(text)
    assert found, "no personal link in the e-mail"
    return found.group(1)


def latest_link(engine: Engine, case_id: int, developer_id: str | None = None) -> str:
    """The personal link of the case's latest e-mail (to ``developer_id``, when given)."""
    with session_scope(engine) as session:
        query = select(OutboxMessage).where(OutboxMessage.case_id == case_id)
        if developer_id is not None:
            query = query.where(OutboxMessage.developer_id == developer_id)
        message = session.scalars(query.order_by(OutboxMessage.id.desc()).limit(1)).one()
        return link_in(message.text_body)


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


Client = Callable[..., TestClient]


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """``portal(now, **env)``: a client of a new app at simulated time ``now``."""
    clients: list[TestClient] = []

    def make(now: datetime, **env: str) -> TestClient:
        monkeypatch.setenv("CASEWARD_NOW", now.isoformat())
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        client = TestClient(create_app(get_settings()))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
