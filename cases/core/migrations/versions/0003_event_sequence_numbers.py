"""event sequence numbers: each event's number within its case, and the case's count

Lets the write path key a step's e-mails before anything is flushed. Existing events are
numbered in id order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:23:55.761591
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE case_events SET seq = (SELECT COUNT(*) FROM case_events AS earlier"
        " WHERE earlier.case_id = case_events.case_id AND earlier.id <= case_events.id)"
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_case_events_case_id_seq"), ["case_id", "seq"]
        )

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_count", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE cases SET event_count ="
        " (SELECT COUNT(*) FROM case_events WHERE case_events.case_id = cases.id)"
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("event_count", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("event_count")

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_case_events_case_id_seq"), type_="unique")
        batch_op.drop_column("seq")
