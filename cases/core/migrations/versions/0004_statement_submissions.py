"""statement submissions: each statement of reasons sent to the DSA Transparency Database

A new table only; no existing row is touched.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 06:49:05.494300
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import cases.core.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "statement_submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("puid", sa.String(length=500), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sending",
                "submitted",
                "rejected",
                name="submissionstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", cases.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", cases.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", cases.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["platform_actions.id"],
            name=op.f("fk_statement_submissions_action_id_platform_actions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_statement_submissions_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_submissions")),
        sa.UniqueConstraint("action_id", name=op.f("uq_statement_submissions_action_id")),
        sa.UniqueConstraint("puid", name=op.f("uq_statement_submissions_puid")),
    )
    with op.batch_alter_table("statement_submissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_statement_submissions_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index("ix_statement_submissions_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("statement_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_statement_submissions_status")
        batch_op.drop_index(batch_op.f("ix_statement_submissions_case_id"))

    op.drop_table("statement_submissions")
