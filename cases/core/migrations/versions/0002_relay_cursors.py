"""relay cursors: how far the Prefect event relay has read case_events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_cursors",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_relay_cursors")),
    )


def downgrade() -> None:
    op.drop_table("relay_cursors")
