"""event.change_floor (the change log's retention floor) and event.archived_at

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:30:00

`change_floor` is the highest seq no longer kept (0: nothing pruned): a door whose cursor is
below it must load a snapshot (docs/decisions/0013-change-log-retention-and-archive.md).
`archived_at` marks an event archived, read-only for the doors.

Plain ADD COLUMNs, not Alembic's batch mode (see 0005: batch mode may rebuild `event` on SQLite,
and dropping `event` cascades to every booking, ticket and scan).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "event",
        sa.Column("change_floor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "event",
        sa.Column("archived_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("event", "archived_at")
    op.drop_column("event", "change_floor")
