"""scan ids scoped to their device; change-log payloads in the one wire shape of protocol.sync

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:00:00

Scans were keyed by `scan_id` alone, so a device reusing another device's id read that scan's
result, and squatting an id hid another device's real scan. They are now keyed by
`(device_id, scan_id)` (docs/decisions/0006).

The change log's payloads change shape (docs/decisions/0006). Items written in the old shape are
dropped rather than rewritten: the log is a replay of facts whose truth lives in the tables, and a
door whose cursor is older than the oldest change kept is told `snapshot_required`, loads a
snapshot and follows the log from there. `event.change_seq` is kept, so seqs never go backwards.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM scan WHERE device_id IS NULL"))
    with op.batch_alter_table("scan", schema=None, recreate="always") as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_device_id"))
        batch_op.drop_constraint("pk_scan", type_="primary")
        batch_op.alter_column("device_id", existing_type=sa.String(length=16), nullable=False)
        batch_op.create_primary_key("pk_scan", ["device_id", "scan_id"])
    op.execute(sa.text("DELETE FROM change"))


def downgrade() -> None:
    with op.batch_alter_table("scan", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("pk_scan", type_="primary")
        batch_op.create_primary_key("pk_scan", ["scan_id"])
        batch_op.alter_column("device_id", existing_type=sa.String(length=16), nullable=True)
        batch_op.create_index(batch_op.f("ix_scan_device_id"), ["device_id"], unique=False)
    op.execute(sa.text("DELETE FROM change"))
