"""Migration 0004 (statement submissions) keeps every existing row, up and down."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, inspect, select, text

from cases.core.db import session_scope
from cases.core.enums import SubmissionStatus
from cases.core.migrate import alembic_config
from cases.core.models import StatementSubmission
from tests.test_migrations import empty_engine

__all__ = ["empty_engine"]

ROWS = {
    "developers": "INSERT INTO developers (id, handle, email, created_at, status) "
    "VALUES ('d-1', 'dev1', 'dev1@example.org', '2026-01-01 00:00:00', 'active')",
    "apps": "INSERT INTO apps (id, developer_id, name, description, website, callback_urls, "
    "created_at, requests_7d, status) VALUES ('a-1', 'd-1', 'App', '', '', '', "
    "'2026-01-01 00:00:00', 0, 'token_revoked')",
    "cases": "INSERT INTO cases (id, policy, severity, status, reason, source, evidence, "
    "opened_by, created_at, status_changed_at, extension_granted, delivery_blocked, urgent, "
    "event_count, version) VALUES (1, 'spam', 'medium', 'enforced', 'r', 'detection', '{}', "
    "'detector', '2026-01-01 00:00:00', '2026-02-01 00:00:00', false, false, false, 0, 1)",
    "enforcements": "INSERT INTO enforcements (id, case_id, reason, urgent, requires_approval, "
    "created_at, executed_at) VALUES (1, 1, 'deadline passed', false, false, "
    "'2026-02-01 00:00:00', '2026-02-01 00:00:00')",
    "platform_actions": "INSERT INTO platform_actions (id, enforcement_id, kind, target_type, "
    "target_id, status, idempotency_key, prior_status, applied_at) VALUES (1, 1, "
    "'revoke_token', 'app', 'a-1', 'applied', 'k-1', 'active', '2026-02-01 00:00:00')",
}


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in ROWS}


def test_0004_adds_the_table_and_keeps_every_row(empty_engine: Engine) -> None:
    config = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    with empty_engine.begin() as conn:
        for statement in ROWS.values():
            conn.execute(text(statement))
    assert "statement_submissions" not in inspect(empty_engine).get_table_names()

    with empty_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
    assert _counts(empty_engine) == dict.fromkeys(ROWS, 1)
    now = datetime(2026, 2, 2, tzinfo=UTC)
    with session_scope(empty_engine) as session:
        assert session.scalars(select(StatementSubmission)).all() == []
        session.add(StatementSubmission(action_id=1, case_id=1, puid="cw-1-1", created_at=now))
    with session_scope(empty_engine) as session:
        row = session.scalars(select(StatementSubmission)).one()
        assert (row.status, row.attempts, row.response) == (SubmissionStatus.PENDING, 0, None)

    with empty_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    assert "statement_submissions" not in inspect(empty_engine).get_table_names()
    assert _counts(empty_engine) == dict.fromkeys(ROWS, 1)
