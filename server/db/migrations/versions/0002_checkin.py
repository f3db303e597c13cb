"""check-in: lists, devices, scans and presence

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:18:38.135758
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkin_list",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ticket_type_ids", sa.JSON(), nullable=True),
        sa.Column("max_entries", sa.Integer(), nullable=True),
        sa.Column("allow_reentry", sa.Boolean(), nullable=False),
        sa.Column("valid_from", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("fk_checkin_list_event_id_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_list")),
    )
    with op.batch_alter_table("checkin_list", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_list_event_id"), ["event_id"], unique=False)

    op.create_table(
        "device",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("gate", sa.String(length=100), nullable=True),
        sa.Column("pairing_code_hash", sa.String(length=64), nullable=True),
        sa.Column("pairing_expires_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paired_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_device_event_id_event"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device")),
        sa.UniqueConstraint("pairing_code_hash", name=op.f("uq_device_pairing_code_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_device_token_hash")),
    )
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_event_id"), ["event_id"], unique=False)

    op.create_table(
        "scan",
        sa.Column("scan_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=10), nullable=False),
        sa.Column("device_id", sa.String(length=16), nullable=True),
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=16), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("scanned_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("gate", sa.String(length=100), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("annulled", sa.Boolean(), nullable=False),
        sa.Column("annulled_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("annulled_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_scan_event_id_event"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scan_id", name=op.f("pk_scan")),
    )
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scan_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_list_id"), ["list_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "presence",
        sa.Column("ticket_id", sa.String(length=16), nullable=False),
        sa.Column("list_id", sa.String(length=16), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("inside", sa.Boolean(), nullable=False),
        sa.Column("first_scan_id", sa.String(length=64), nullable=True),
        sa.Column("first_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_gate", sa.String(length=100), nullable=True),
        sa.Column("first_device", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["checkin_list.id"],
            name=op.f("fk_presence_list_id_checkin_list"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_presence_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "list_id", name=op.f("pk_presence")),
    )
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_presence_list_id"), ["list_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("presence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_presence_list_id"))

    op.drop_table("presence")
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_scan_received_at"))
        batch_op.drop_index(batch_op.f("ix_scan_list_id"))
        batch_op.drop_index(batch_op.f("ix_scan_event_id"))
        batch_op.drop_index(batch_op.f("ix_scan_device_id"))

    op.drop_table("scan")
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_event_id"))

    op.drop_table("device")
    with op.batch_alter_table("checkin_list", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_list_event_id"))

    op.drop_table("checkin_list")
