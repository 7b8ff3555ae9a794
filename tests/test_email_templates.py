"""Every template renders for a realistic case; escaping and header safety hold."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from sqlalchemy import Engine, func, select

from cases.core.db import session_scope
from cases.core.enums import EmailTemplate, OutboxStatus
from cases.core.models import OutboxMessage
from cases.core.settings import get_settings
from cases.email import outbox
from cases.email.delivery import to_outgoing
from cases.email.message import OutgoingEmail, build_mime, message_id_for
from cases.email.render import RenderError, get_renderer, header_safe, leftover_syntax
from tests.email_fixtures import (
    HOSTILE_NAME,
    INJECTION_NAME,
    NOW,
    extras_for,
    make_case,
    sqlite_db,
)

__all__ = ["sqlite_db"]
TEMPLATES = list(EmailTemplate)


def _outgoing(message: OutboxMessage) -> OutgoingEmail:
    return to_outgoing(message, get_settings().email)


def test_every_enum_value_has_three_template_files() -> None:
    folder = get_renderer().template_dir
    for template in TEMPLATES:
        for part in ("subject", "txt", "html"):
            assert (folder / f"{template}.{part}.j2").is_file(), (template, part)


@pytest.mark.parametrize("template", TEMPLATES, ids=str)
@pytest.mark.parametrize("name", [HOSTILE_NAME, INJECTION_NAME], ids=["script", "crlf-bcc"])
def test_template_renders_both_parts_safely(
    sqlite_db: Engine, template: EmailTemplate, name: str
) -> None:
    settings = get_settings()
    with session_scope(sqlite_db) as session:
        case, event = make_case(session, app_name=name, developers=2)
        messages = outbox.enqueue(
            session,
            case=case,
            event=event,
            template=template,
            now=NOW,
            extra=extras_for(template, case),
        )
        assert len(messages) == 2  # one per developer
        for message in messages:
            ref = f"{settings.email.case_ref_prefix}{case.id}"
            assert ref in message.subject
            assert "\r" not in message.subject and "\n" not in message.subject
            for body in (message.text_body, message.html_body):
                assert leftover_syntax(body) == []
                assert ref in body
                assert settings.email.policy_url in body
                assert "Hello dev" in body
            # HTML: developer text escaped, never markup; links are real links
            assert "<script>" not in message.html_body
            if name == HOSTILE_NAME:
                assert "&lt;script&gt;x&lt;/script&gt;" in message.html_body
            assert "<b>" not in message.html_body
            assert re.search(r'href="https://developer\.example\.com/', message.html_body)
            assert 'href="javascript:' not in message.html_body
            # the text part is plain text with the name on one line
            assert "\nBcc:" not in message.text_body
            # the MIME message has exactly the headers we set, whatever the app is called
            mime = build_mime(_outgoing(message), date=NOW).as_bytes()
            parsed = email.message_from_bytes(mime, policy=email.policy.default)
            assert parsed["Bcc"] is None
            assert parsed["Message-ID"] == message.message_id
            assert parsed["Subject"] == message.subject
            assert [p.get_content_type() for p in parsed.walk()][1:] == ["text/plain", "text/html"]


def test_hostile_name_is_escaped_in_the_outreach_html(sqlite_db: Engine) -> None:
    with session_scope(sqlite_db) as session:
        case, event = make_case(session, app_name=HOSTILE_NAME)
        (message,) = outbox.enqueue(
            session, case=case, event=event, template=EmailTemplate.OUTREACH, now=NOW
        )
        assert "<strong>&lt;script&gt;x&lt;/script&gt;</strong>" in message.html_body
        assert "<script>x</script>" in message.text_body  # plain text shows it as typed


def test_a_missing_variable_is_an_error_never_a_blank(sqlite_db: Engine) -> None:
    with session_scope(sqlite_db) as session:
        case, event = make_case(session)
        with pytest.raises(RenderError, match="changes"):
            outbox.enqueue(
                session,
                case=case,
                event=event,
                template=EmailTemplate.FEATURE_CHANGE_REQUEST,
                now=NOW,
                extra={},
            )


def test_enqueue_is_idempotent_per_event_template_and_developer(sqlite_db: Engine) -> None:
    with session_scope(sqlite_db) as session:
        case, event = make_case(session, developers=2)
        first = outbox.enqueue(
            session, case=case, event=event, template=EmailTemplate.OUTREACH, now=NOW
        )
        again = outbox.enqueue(
            session, case=case, event=event, template=EmailTemplate.OUTREACH, now=NOW
        )
        assert [m.id for m in first] == [m.id for m in again]
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 2
        message = first[0]
        assert message.status == OutboxStatus.PENDING
        assert message.idempotency_key == (
            f"case-{case.id}-seq-{event.seq}-outreach-{message.developer_id}"
        )
        assert message.message_id == message_id_for(message.idempotency_key, "x@caseward.local")


def test_deadlines_show_date_time_and_zone(
    sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEWARD_EMAIL__TIMEZONE", "Europe/Berlin")
    get_settings.cache_clear()
    with session_scope(sqlite_db) as session:
        case, event = make_case(session)
        (message,) = outbox.enqueue(
            session,
            case=case,
            event=event,
            template=EmailTemplate.DEADLINE_REMINDER,
            now=NOW,
            extra=extras_for(EmailTemplate.DEADLINE_REMINDER, case),
        )
    # 2026-12-02 09:00 UTC is 10:00 in Berlin (CET, UTC+1)
    assert "Wednesday 2 December 2026, 10:00 CET (UTC+01:00)" in message.text_body
    assert "2 December 2026" in message.subject


def test_header_safe_removes_every_line_break() -> None:
    assert header_safe("a\r\nBcc: x@y.z\u2028b\x00c") == "a Bcc: x@y.z b c"


@pytest.mark.parametrize("template", TEMPLATES, ids=str)
def test_recipients_rendered_together_read_as_if_rendered_alone(
    sqlite_db: Engine, template: EmailTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``render_each`` renders a partial that reads only shared values once for all the
    recipients; each e-mail is still exactly what rendering it alone gives."""
    from cases.email import context

    settings = get_settings()
    renderer = get_renderer()
    with session_scope(sqlite_db) as session:
        case, _ = make_case(session, developers=3)
        shared = context.shared_context(
            case=case,
            template=template,
            now=NOW,
            extra=extras_for(template, case),
            settings=settings,
            catalog=renderer.catalog,
        )
        contexts = [context.developer_context(shared, case, d, settings) for d in case.developers]
        alone = [renderer.render(template, c) for c in contexts]
        # count the runs of the policy passage's own code, under its sharing wrapper
        policy = renderer.env.get_template("partials/policy.txt.j2")
        (cell,) = [
            c for c in policy.root_render_func.__closure__ or () if callable(c.cell_contents)
        ]
        runs, original = [], cell.cell_contents
        monkeypatch.setattr(cell, "cell_contents", lambda ctx: runs.append(1) or original(ctx))
        together = renderer.render_each(template, contexts)
    assert together == alone
    assert len({r.text for r in together}) == 3  # each names its own reader
    # the passage is in an e-mail that includes it once, for all three readers
    included = (
        "partials/policy.txt.j2"
        in renderer.env.loader.get_source(renderer.env, f"{template}.txt.j2")[0]
    )
    assert len(runs) == (1 if included else 0)
