"""repeat offenders: each case's developers' strikes at confirmation, and its consequences

Existing cases keep every row: no strikes recorded (an empty object), the configured change
deadline (NULL) and no extra approval (false), which is what they were confirmed with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prior_strikes", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("change_days", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("lead_approval", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("lead_approval")
        batch_op.drop_column("change_days")
        batch_op.drop_column("prior_strikes")
