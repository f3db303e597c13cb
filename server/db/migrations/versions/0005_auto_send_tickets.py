"""event.auto_send_tickets: mail each booking its e-tickets as it is confirmed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:00:00

Existing events keep sending nothing on their own (server default false): an organiser turns it on.

A plain ADD COLUMN, not Alembic's batch mode: on SQLite batch mode may rebuild `event` by
dropping it, and with foreign keys on, dropping `event` deletes every booking, ticket and scan
that cascades from it. SQLite adds a NOT NULL column with a constant default in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "event",
        sa.Column("auto_send_tickets", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("event", "auto_send_tickets")
