"""``caseward outbox list/send/show/resolve`` and ``caseward email preview``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from cases.core.db import Base, get_engine, session_scope
from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.models import OutboxMessage
from caseward.cli import main
from tests.email_fixtures import HOSTILE_NAME, NOW
from tests.test_outbox_delivery import queue, rows

AT = ["--now", NOW.isoformat()]


@pytest.fixture
def engine() -> Engine:
    engine = get_engine()
    Base.metadata.create_all(engine)
    return engine


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([*AT, *args])
    return code, capsys.readouterr().out


def test_list_send_and_show(
    engine: Engine, capsys: pytest.CaptureFixture[str], isolated_settings: Path
) -> None:
    case_id = queue(engine, developers=2)
    code, text = run(capsys, "outbox", "list", "--status", "pending", "--json")
    listed = json.loads(text)
    assert code == 0 and len(listed) == 2 and {r["case_id"] for r in listed} == {case_id}
    code, text = run(capsys, "outbox", "send", "--json")
    assert code == 0 and json.loads(text)["sent"] == 2
    assert len(list((isolated_settings / "mail").glob("*.eml"))) == 2
    code, text = run(capsys, "outbox", "list")
    assert code == 0 and "sent" in text and f"[CW-{case_id}]" not in text  # table, no subject
    message_id = listed[0]["id"]
    code, text = run(capsys, "outbox", "show", str(message_id))
    assert code == 0 and f"Subject: [CW-{case_id}] Required changes" in text


def test_resolve_an_uncertain_message(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    queue(engine)
    with session_scope(engine) as session:
        session.execute(update(OutboxMessage).values(status=OutboxStatus.UNCERTAIN, claimed_at=NOW))
    (message,) = rows(engine)
    code, text = run(capsys, "outbox", "list", "--status", "uncertain", "--json")
    assert [r["id"] for r in json.loads(text)] == [message.id]
    assert main([*AT, "outbox", "resolve", str(message.id)]) == 2  # one of --sent/--resend
    code, text = run(capsys, "outbox", "resolve", str(message.id), "--resend")
    assert code == 0 and "pending" in text
    assert rows(engine)[0].status == OutboxStatus.PENDING


def test_preview_renders_without_storing(
    engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case_id = queue(engine, template=EmailTemplate.OUTREACH, app_name=HOSTILE_NAME)
    before = len(rows(engine))
    html = tmp_path / "preview.html"
    for template in EmailTemplate:
        code, text = run(
            capsys, "email", "preview", template.value, "--case", str(case_id), "--html", str(html)
        )
        assert code == 0, template
        assert f"Subject: [CW-{case_id}]" in text
        assert "&lt;script&gt;" in html.read_text()
    assert len(rows(engine)) == before
    assert main([*AT, "email", "preview", "outreach", "--case", "999"]) == 2
