"""email events: what SendGrid's Event Webhook reported about each e-mail

Each event is kept once (``sg_event_id`` unique); an outbox row gains when it was delivered
and when it bounced or was dropped. Existing rows have neither: nothing was reported yet.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cases.core.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sg_event_id", sa.String(length=200), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", cases.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", cases.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_email_events_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_events")),
        sa.UniqueConstraint("sg_event_id", name=op.f("uq_email_events_sg_event_id")),
    )
    with op.batch_alter_table("email_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_events_outbox_id"), ["outbox_id"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivered_at", cases.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("bounced_at", cases.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("bounced_at")
        batch_op.drop_column("delivered_at")
    with op.batch_alter_table("email_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_events_outbox_id"))
    op.drop_table("email_events")
