"""HttpAdapter against a local fake platform (tests/platform_fixtures.py): headers, retries,
and no action applied twice."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from cases.core.db import session_scope
from cases.core.enums import ActionKind, ActionStatus, CaseStatus, TargetType
from cases.core.errors import PlatformError
from cases.core.models import OutboxMessage, PlatformAction
from cases.core.settings import get_settings
from cases.enforcement.platform import get_adapter
from cases.enforcement.platform.base import ActionSpec
from cases.enforcement.platform.http import HttpAdapter
from cases.lifecycle import sweeper
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import TIMES, days
from tests.platform_fixtures import FakePlatform, platform

__all__ = ["platform"]

SPEC = ActionSpec(ActionKind.REVOKE_TOKEN, TargetType.APP, "a-1", "case-1-revoke_token-app-a-1")


def adapter(url: str, *, token: str | None = "tok-123", attempts: int = 3) -> HttpAdapter:
    return HttpAdapter(
        api_url=url, token=token, timeout=5, max_attempts=attempts, backoff_seconds=0
    )


def test_apply_and_reverse_send_token_key_and_json_body(platform: FakePlatform) -> None:
    client = adapter(platform.url)
    assert client.apply(SPEC) == "active"
    client.reverse(SPEC, "restricted")
    (path1, headers1, body1), (path2, headers2, body2) = platform.requests
    assert (path1, path2) == ("/actions", "/actions/reverse")
    assert headers1["authorization"] == "Bearer tok-123"
    assert headers1["content-type"] == "application/json"
    assert headers1["idempotency-key"] == "case-1-revoke_token-app-a-1-actions"
    assert headers2["idempotency-key"] == "case-1-revoke_token-app-a-1-actions-reverse"
    assert body1 == {"action": "revoke_token", "target_type": "app", "target_id": "a-1"}
    assert body2 == body1 | {"restore_status": "restricted"}


def test_no_token_sends_no_authorization(platform: FakePlatform) -> None:
    adapter(platform.url, token=None).apply(SPEC)
    assert "authorization" not in platform.requests[0][1]


def test_5xx_is_retried_with_the_same_key_then_succeeds(platform: FakePlatform) -> None:
    platform.script = [503, 502]
    assert adapter(platform.url).apply(SPEC) == "active"
    assert len(platform.requests) == 3
    assert len(set(platform.keys())) == 1
    assert len(platform.effects) == 1


def test_5xx_every_time_fails_after_max_attempts(platform: FakePlatform) -> None:
    platform.script = [500, 500, 500]
    with pytest.raises(PlatformError, match=r"after 3 attempts .*HTTP 500"):
        adapter(platform.url).apply(SPEC)
    assert len(platform.requests) == 3 and platform.effects == []


@pytest.mark.parametrize("code", [400, 401, 404, 409, 422])
def test_4xx_fails_at_once(platform: FakePlatform, code: int) -> None:
    platform.script = [code]
    with pytest.raises(PlatformError, match=f"refused revoke_token on app a-1: HTTP {code}"):
        adapter(platform.url).apply(SPEC)
    assert len(platform.requests) == 1


def test_transport_failure_is_retried(platform: FakePlatform) -> None:
    platform.script = ["drop"]
    assert adapter(platform.url).apply(SPEC) == "active"
    assert len(platform.requests) == 2 and len(platform.effects) == 1


def test_unreachable_platform_fails_after_max_attempts() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PlatformError, match=r"after 2 attempts .*ConnectError"):
        adapter(f"http://127.0.0.1:{port}", attempts=2).apply(SPEC)


def test_http_adapter_needs_an_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEWARD_PLATFORM__ADAPTER", "http")
    reset_caches()
    with pytest.raises(PlatformError, match="api_url is not set"):
        get_adapter(None, get_settings())  # type: ignore[arg-type]


# --- end to end: the sweeper's enforce step through the admin API --------------------------


def _actions(engine: Engine, case_id: int) -> list[tuple[str, ActionStatus, str | None]]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(PlatformAction).where(PlatformAction.idempotency_key.like(f"case-{case_id}-%"))
        )
        return sorted((a.target_id, a.status, a.prior_status) for a in rows)


def _use(platform: FakePlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEWARD_PLATFORM__ADAPTER", "http")
    monkeypatch.setenv("CASEWARD_PLATFORM__API_URL", platform.url)
    monkeypatch.setenv("CASEWARD_PLATFORM__API_TOKEN", "tok-e2e")
    monkeypatch.setenv("CASEWARD_PLATFORM__MAX_ATTEMPTS", "1")  # no backoff sleeps
    reset_caches()


def _notices(engine: Engine, case_id: int) -> list[str]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(OutboxMessage.template)
                .where(OutboxMessage.case_id == case_id)
                .where(OutboxMessage.template == "token_revoked")
            )
        )


def test_an_action_the_platform_failed_is_applied_by_the_next_run_with_its_own_notice(
    engine: Engine, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = f.case_in(engine, CaseStatus.ENFORCEMENT_DUE, apps=2)  # revoke two tokens
    _use(platform, monkeypatch)
    platform.script = ["ok", 500]
    report = sweeper.run_step(engine, "enforce", now=TIMES["enforce"])
    assert list(report.failed) == [case_id] and "enforced in part" in report.failed[case_id]
    assert sorted(s for _, s, _ in _actions(engine, case_id)) == [
        ActionStatus.APPLIED,
        ActionStatus.PLANNED,
    ]
    assert f.db_state(engine, case_id)["snapshot"].status is CaseStatus.ENFORCED  # type: ignore[attr-defined]
    assert _notices(engine, case_id) == ["token_revoked"]  # what was applied is noticed now

    report = sweeper.run_step(engine, "enforce", now=TIMES["enforce"] + days(1))
    assert (report.done, report.failed) == ([case_id], {})
    assert {s for _, s, _ in _actions(engine, case_id)} == {ActionStatus.APPLIED}
    assert _notices(engine, case_id) == ["token_revoked"] * 2  # and the rest, when applied
    assert len(platform.effects) == 2

    sent = len(platform.requests)  # settled: another run asks the platform nothing
    assert sweeper.run_step(engine, "enforce", now=TIMES["enforce"] + days(2)).done == []
    assert len(platform.requests) == sent


def test_enforcement_through_the_api_never_applies_an_action_twice(
    engine: Engine, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = f.case_in(engine, CaseStatus.ENFORCEMENT_DUE, apps=2)  # revoke two tokens
    _use(platform, monkeypatch)
    now = TIMES["enforce"]

    # the platform revokes the first token but its answer is lost: we record it as not
    # applied, and do not try the second while the platform cannot be reached
    platform.script = ["drop"]
    report = sweeper.run_step(engine, "enforce", now=now)
    assert list(report.failed) == [case_id]
    assert {status for _, status, _ in _actions(engine, case_id)} == {ActionStatus.PLANNED}
    assert len(platform.effects) == 1 and len(platform.requests) == 1

    # the retry repeats the first call with the same key: the platform does not redo it
    report = sweeper.run_step(engine, "enforce", now=now)
    assert report.done == [case_id]
    assert platform.keys().count(platform.keys()[0]) == 2
    targets = sorted(t for t, _, _ in _actions(engine, case_id))
    assert sorted(t for _, _, t in platform.effects) == targets  # each applied exactly once
    assert [(s, p) for _, s, p in _actions(engine, case_id)] == [
        (ActionStatus.APPLIED, "active")
    ] * 2  # the prior status of the first answer, not "token_revoked"
    assert all(h["authorization"] == "Bearer tok-e2e" for _, h, _ in platform.requests)
    snapshot = f.db_state(engine, case_id)["snapshot"]
    assert snapshot.status is CaseStatus.ENFORCED  # type: ignore[attr-defined]
