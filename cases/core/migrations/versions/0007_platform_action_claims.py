"""platform action claims: claimed before the platform call, recorded after, noticed

An action is claimed (who, when) and committed before the platform is called; the platform's
refusal is kept; ``noticed_at`` says when the developer's notice was queued. Existing
applied actions were noticed by the enforcement that applied them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cases.core.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("platform_actions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_at", cases.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("noticed_at", cases.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_platform_actions_target", ["target_type", "target_id"])
    op.execute("UPDATE platform_actions SET noticed_at = applied_at WHERE applied_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("platform_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_platform_actions_target")
        batch_op.drop_column("noticed_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("claimed_at")
