"""campaigns, the message ledger (the outbox) and unsubscribes: server/campaigns/models.py

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:57:13.328798
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("per_ticket", sa.Boolean(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("attach_pdf", sa.Boolean(), nullable=False),
        sa.Column("attach_ics", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("send_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("remind_before", sa.Integer(), nullable=True),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=True),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_campaign_event_id_event"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_send_at"), ["send_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_status"), ["status"], unique=False)

    op.create_table(
        "unsubscribe",
        sa.Column("event_id", sa.String(length=10), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=16), nullable=True),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("fk_unsubscribe_event_id_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "email", name=op.f("pk_unsubscribe")),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=10), nullable=False),
        sa.Column("campaign_id", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("booking_id", sa.String(length=16), nullable=True),
        sa.Column("ticket_id", sa.String(length=16), nullable=True),
        sa.Column("to_name", sa.String(length=200), nullable=True),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_reply", sa.String(length=1000), nullable=True),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_by_machine", sa.Boolean(), nullable=False),
        sa.Column("clicked_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.id"],
            name=op.f("fk_message_booking_id_booking"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_message_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_message_event_id_event"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_message_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint("message_id", name=op.f("uq_message_message_id")),
        sa.UniqueConstraint("token", name=op.f("uq_message_token")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_booking_id"), ["booking_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index("ix_message_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_to_email"), ["to_email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_to_email"))
        batch_op.drop_index(batch_op.f("ix_message_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_message_event_id"))
        batch_op.drop_index("ix_message_due")
        batch_op.drop_index(batch_op.f("ix_message_campaign_id"))
        batch_op.drop_index(batch_op.f("ix_message_booking_id"))

    op.drop_table("message")
    op.drop_table("unsubscribe")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_status"))
        batch_op.drop_index(batch_op.f("ix_campaign_send_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_event_id"))

    op.drop_table("campaign")
