"""sla breaches: work-queue items that waited past their service-level target

A new table; no existing row changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cases.core.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_breaches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("since", cases.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", cases.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detected_at", cases.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("announced_at", cases.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_sla_breaches_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_breaches")),
        sa.UniqueConstraint(
            "case_id", "kind", "since", name=op.f("uq_sla_breaches_case_id_kind_since")
        ),
    )
    with op.batch_alter_table("sla_breaches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_breaches_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sla_breaches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_breaches_case_id"))
    op.drop_table("sla_breaches")
