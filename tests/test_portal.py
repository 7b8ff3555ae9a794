"""The developer portal through HTTP: each action, each security rule, each refusal.

Links are taken from the e-mails the lifecycle rendered; the app runs at a simulated time
(``CASEWARD_NOW``), the business clock of every process.
"""

from __future__ import annotations

import logging
import string
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import CaseStatus, EmailTemplate
from cases.core.models import Appeal, CaseEvent, ChangeRequest, OutboxMessage
from cases.core.settings import get_settings
from cases.lifecycle import extensions, operations, service, sweeper
from cases.portal import links
from tests.factories import T0, TIMES, app, case_in, developer, open_case
from tests.portal_fixtures import Client, csrf_of, latest_link, link_in, portal

__all__ = ["portal"]
DURING_CHANGES = TIMES["request"] + timedelta(days=5)
AFTER_ENFORCEMENT = TIMES["enforce"] + timedelta(days=2)


def events(engine: Engine, case_id: int, kind: str) -> list[CaseEvent]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == kind)
            )
        )


def status(engine: Engine, case_id: int) -> CaseStatus:
    with session_scope(engine) as session:
        return service.get_or_raise(session, case_id=case_id).status


def post(client: object, path: str, action: str, **fields: str) -> object:
    page = client.get(path)  # type: ignore[attr-defined]
    return client.post(  # type: ignore[attr-defined]
        f"{path}/{action}", data={"csrf_token": csrf_of(page.text), **fields}
    )


def test_the_case_page_shows_the_developers_case(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    path = latest_link(engine, case_id)
    page = portal(DURING_CHANGES).get(path)
    assert page.status_code == 200
    text = page.text
    assert "Limit how many posts one user can create" in text  # the changes asked
    assert "Deadline: <strong>" in text and "17 December 2026" in text
    assert 'action="' + path + '/compliance"' in text
    assert 'action="' + path + '/extension"' in text
    assert 'action="' + path + '/appeal"' not in text  # not enforced
    assert "We asked you for specific changes" in text  # the steps
    assert "[CW-" in text  # the e-mails sent


def test_headers_on_every_response(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    for response in (
        client.get(latest_link(engine, case_id)),
        client.get("/case/unknown"),
        client.get("/"),
        client.get("/static/portal.css"),
    ):
        headers = response.headers
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"


def test_no_external_asset_and_no_script(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "enforced")
    page = portal(AFTER_ENFORCEMENT).get(latest_link(engine, case_id)).text
    assert "<script" not in page
    assert 'href="/static/portal.css"' in page
    for tag in ("<link", "<img", "<iframe"):
        for chunk in page.split(tag)[1:]:
            assert "//" not in chunk.split(">")[0], chunk[:80]


def test_unknown_tampered_and_expired_links_get_the_same_404(
    engine: Engine, portal: Client
) -> None:
    case_id = case_in(engine, "changes_requested")
    path = latest_link(engine, case_id)
    token = path.removeprefix("/case/")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with session_scope(engine) as session:
        case = service.get_or_raise(session, case_id=case_id)
        claims = links.LinkClaims(
            case_id, links.developer_ref(case.developers[0].id), T0 + timedelta(days=900)
        )
        other_key = links.sign(claims, b"another key that is not the portal's own key")
        expiry = links.expiry(case, now=TIMES["request"], settings=get_settings())
    client = portal(DURING_CHANGES)
    pages = [client.get(f"/case/{t}") for t in ("nothing", tampered, other_key, token[:20])]
    late = portal(expiry + timedelta(seconds=1)).get(path)
    assert late.status_code == 404
    assert {p.status_code for p in pages} == {404}
    assert len({p.text for p in [*pages, late]}) == 1  # the very same page
    assert portal(expiry - timedelta(seconds=1)).get(path).status_code == 200


def test_every_other_spelling_of_a_link_is_refused() -> None:
    """Each one-character change of a token, in every position (the last character's spare
    bits included), is refused."""
    key = b"a portal key of thirty-two bytes!"
    token = links.sign(links.LinkClaims(7, links.developer_ref("d1"), T0 + timedelta(days=30)), key)
    assert links.verify(token, [key], now=T0) is not None
    alphabet = string.ascii_letters + string.digits + "-_"
    others = {
        token[:i] + c + token[i + 1 :] for i in range(len(token)) for c in alphabet if c != token[i]
    }
    assert [t for t in others if links.verify(t, [key], now=T0) is not None] == []


def test_every_email_of_a_sweep_links_its_own_recipient(engine: Engine) -> None:
    """The sweeper renders a case's recipients together: each e-mail, text and HTML, still
    carries its own recipient's link to its own case."""
    with session_scope(engine) as session:
        owners = [developer(session) for _ in range(3)]
        apps = [app(session, owner=o).id for o in owners]
        case_ids = [
            open_case(session, on=(apps[:2], [o.id for o in owners[:2]])).id,
            open_case(session, on=(apps[2:], [owners[2].id])).id,
        ]
        for case_id in case_ids:
            operations.confirm(session, case_id=case_id, actor="lead-ann", reason="ok", now=T0)
    sweeper.advance(engine, now=T0)
    settings = get_settings()
    keys = links.keys(settings.portal, simulation=settings.simulation)
    with session_scope(engine) as session:
        sent = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert len(sent) == 3
    for message in sent:
        path = link_in(message.text_body)
        assert path in message.html_body
        claims = links.verify(path.removeprefix("/case/"), keys, now=T0)
        assert claims is not None
        assert claims.case_id == message.case_id
        assert claims.developer_ref == links.developer_ref(message.developer_id)


def test_a_link_opens_only_its_developers_view(engine: Engine, portal: Client) -> None:
    """A case of two parties: each link shows its own apps and statements, never the other's."""
    with session_scope(engine) as session:
        one, two = developer(session), developer(session)
        apps = [app(session, owner=one).id, app(session, owner=two).id]
        case_id = open_case(session, on=(apps, [one.id, two.id])).id
        operations.confirm(session, case_id=case_id, actor="lead-ann", reason="r", now=T0)
        operations.send_outreach(session, case_id=case_id, now=T0)
        ids = (one.id, two.id)
    client = portal(T0 + timedelta(days=1))
    path_one, path_two = (latest_link(engine, case_id, d) for d in ids)
    assert path_one != path_two
    assert post(client, path_one, "acknowledge", statement="secret of one").status_code == 200
    page_two = client.get(path_two).text
    assert apps[1] in page_two and apps[0] not in page_two
    assert "secret of one" not in page_two
    assert "secret of one" in client.get(path_one).text
    [ack] = events(engine, case_id, "acknowledge")
    assert ack.actor == f"developer:{ids[0]}"


def test_acknowledge_is_recorded_once(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    path = latest_link(engine, case_id)
    first = post(client, path, "acknowledge", statement="")
    second = post(client, path, "acknowledge", statement="again")
    assert first.status_code == second.status_code == 200
    assert "Already received" in second.text
    assert len(events(engine, case_id, "acknowledge")) == 1


def test_compliance_with_its_url_then_a_second_submit_changes_nothing(
    engine: Engine, portal: Client
) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    path = latest_link(engine, case_id)
    page = client.get(path)
    form = {
        "csrf_token": csrf_of(page.text),
        "statement": "Posting is limited per user.",
        "url": "https://app.example.net/changelog",
    }
    done = client.post(f"{path}/compliance", data=form)
    again = client.post(f"{path}/compliance", data=form)  # a double click, a reload
    assert done.status_code == 200 and "we received your report" in done.text
    assert again.status_code == 200 and "Already received" in again.text
    [event] = events(engine, case_id, "report_compliance")
    assert event.data["url"] == "https://app.example.net/changelog"
    assert event.reason.startswith("Posting is limited per user.")
    assert status(engine, case_id) is CaseStatus.COMPLIANCE_REPORTED
    with session_scope(engine) as session:
        request = session.scalars(select(ChangeRequest)).one()
        assert request.response == "compliance_reported"


def test_extension_request_waits_for_a_lead_and_holds_escalation(
    engine: Engine, portal: Client
) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    path = latest_link(engine, case_id)
    done = post(client, path, "extension", statement="Two more weeks, please.")
    assert done.status_code == 200
    assert "request for more time" in done.text
    with session_scope(engine) as session:
        assert extensions.awaiting_decision(session, case_id=case_id)
        receipt = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.template == EmailTemplate.EXTENSION_REQUESTED.value
            )
        ).one()
        assert "We received a request for more time" in receipt.text_body
    # the deadline passes: no escalation while the request waits
    past = TIMES["deadline"] + timedelta(days=1)
    sweeper.advance(engine, now=past)
    assert status(engine, case_id) is CaseStatus.CHANGES_REQUESTED
    assert "request for more time is with a reviewer" in client.get(path).text
    # a lead declines: the next sweep escalates
    with session_scope(engine) as session:
        extensions.decline_extension(
            session, case_id=case_id, actor="lead-ann", reason="no progress", now=past
        )
    sweeper.advance(engine, now=past)
    assert status(engine, case_id) is CaseStatus.ENFORCED  # escalated, and enforced


def test_appeal_within_the_window_once(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "enforced")
    client = portal(AFTER_ENFORCEMENT)
    path = latest_link(engine, case_id)
    page = client.get(path)
    assert 'id="appeal"' in page.text
    form = {"csrf_token": csrf_of(page.text), "statement": "We removed the copies."}
    done = client.post(f"{path}/appeal", data=form)
    again = client.post(f"{path}/appeal", data=form)  # the browser's reload sends it again
    assert done.status_code == 200 and again.status_code == 200
    assert "Already received" in again.text
    assert status(engine, case_id) is CaseStatus.APPEALED
    with session_scope(engine) as session:
        [appeal] = session.scalars(select(Appeal)).all()
        assert appeal.submitted_by.startswith("developer:")
        received = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.template == EmailTemplate.APPEAL_RECEIVED.value
            )
        ).all()
        assert len(received) == 1


def test_an_action_the_status_does_not_allow_changes_nothing(
    engine: Engine, portal: Client
) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    path = latest_link(engine, case_id)
    refused = post(client, path, "appeal", statement="not enforced yet")
    assert refused.status_code == 409
    assert "Not possible any more" in refused.text
    assert events(engine, case_id, "submit_appeal") == []


def test_forms_without_a_valid_csrf_token_change_nothing(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    path = latest_link(engine, case_id)
    token = csrf_of(client.get(path).text)
    attempts = [
        client.post(f"{path}/compliance", data={"statement": "done"}),
        client.post(f"{path}/compliance", data={"statement": "done", "csrf_token": "0" * 64}),
    ]
    client.cookies.clear()  # a forged cross-site form: the token, without the cookie
    attempts.append(
        client.post(f"{path}/compliance", data={"statement": "done", "csrf_token": token})
    )
    assert [a.status_code for a in attempts] == [403, 403, 403]
    assert events(engine, case_id, "report_compliance") == []


def test_changes_only_by_post(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    path = latest_link(engine, case_id)
    for action in ("acknowledge", "compliance", "extension", "appeal"):
        response = client.get(f"{path}/{action}")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
    assert client.post(path, data={}).status_code == 405
    assert events(engine, case_id, "acknowledge") == []


def test_statements_are_limited_kept_as_text_and_escaped(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    client = portal(DURING_CHANGES)
    path = latest_link(engine, case_id)
    too_long = post(client, path, "compliance", statement="x" * 5001)
    assert too_long.status_code == 400
    assert "at most 5,000 characters" in too_long.text
    empty = post(client, path, "compliance", statement="  ")
    assert empty.status_code == 400
    bad_url = post(client, path, "compliance", statement="done", url="javascript:alert(1)")
    assert bad_url.status_code == 400
    assert events(engine, case_id, "report_compliance") == []
    hostile = '<script>alert("x")</script>\r\nline two'
    assert post(client, path, "compliance", statement=hostile + "y" * 4950).status_code == 200
    [event] = events(engine, case_id, "report_compliance")
    assert event.reason.startswith('<script>alert("x")</script>\nline two')  # text, as typed
    page = client.get(path).text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_rate_limits_per_link_and_per_address(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    path = latest_link(engine, case_id)
    client = portal(DURING_CHANGES, CASEWARD_PORTAL__LINK_REQUESTS_PER_MINUTE="3")
    codes = [client.get(path).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert client.get(path).headers["retry-after"] == "60"
    client = portal(DURING_CHANGES, CASEWARD_PORTAL__ADDRESS_REQUESTS_PER_MINUTE="3")
    codes = [client.get(p).status_code for p in ("/case/a", "/case/b", path, path)]
    assert codes == [404, 404, 200, 429]  # guessing links spends the address's budget


def test_tokens_never_reach_the_logs(
    engine: Engine, portal: Client, caplog: pytest.LogCaptureFixture
) -> None:
    case_id = case_in(engine, "changes_requested")
    path = latest_link(engine, case_id)
    token = path.removeprefix("/case/")
    client = portal(DURING_CHANGES)
    with caplog.at_level(logging.DEBUG):
        client.get(path)
        post(client, path, "acknowledge", statement="ok")
        client.get(f"{path}/appeal")
    # the server's records (the test client's own httpx lines name the URL it requested)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(r.getMessage() for r in server)
    assert f"case {case_id}" in logged
    assert token not in logged and token[:20] not in logged


def test_a_key_rotation_keeps_old_links_working(engine: Engine, portal: Client) -> None:
    case_id = case_in(engine, "changes_requested")
    path = latest_link(engine, case_id)  # signed with the tests' key
    from tests.conftest import TEST_PORTAL_KEY

    new_key = "a-new-portal-key-after-rotation-0123456789"
    rotated = portal(
        DURING_CHANGES,
        CASEWARD_PORTAL__SECRET_KEY=new_key,
        CASEWARD_PORTAL__PREVIOUS_KEYS=f'["{TEST_PORTAL_KEY}"]',
    )
    assert rotated.get(path).status_code == 200
    dropped = portal(DURING_CHANGES, CASEWARD_PORTAL__PREVIOUS_KEYS="[]")
    assert dropped.get(path).status_code == 404


def test_outside_simulation_a_portal_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    from cases.core.errors import ConfigError
    from cases.core.settings import get_settings
    from tests.conftest import reset_caches

    monkeypatch.setenv("CASEWARD_SIMULATION", "false")
    monkeypatch.delenv("CASEWARD_PORTAL__SECRET_KEY")
    reset_caches()
    with pytest.raises(ConfigError, match="CASEWARD_PORTAL__SECRET_KEY"):
        get_settings()
    monkeypatch.setenv("CASEWARD_PORTAL__SECRET_KEY", "short")
    reset_caches()
    with pytest.raises(ConfigError, match=r"portal\.secret_key"):
        get_settings()
