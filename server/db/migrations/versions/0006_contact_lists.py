"""contact lists and their contacts: server/contacts/models.py

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00

Two new tables, nothing existing changes. The unique (list_id, email_key) index is what keeps a
list to one contact per address; it also pages a list in address order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_list",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact_count", sa.Integer(), nullable=False),
        sa.Column("archived_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("merged_into_id", sa.String(length=16), nullable=True),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["contact_list.id"],
            name=op.f("fk_contact_list_merged_into_id_contact_list"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_list")),
    )
    op.create_table(
        "contact",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("list_id", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=640), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["contact_list.id"],
            name=op.f("fk_contact_list_id_contact_list"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact")),
        sa.UniqueConstraint("list_id", "email_key", name=op.f("uq_contact_list_id_email_key")),
    )


def downgrade() -> None:
    op.drop_table("contact")
    op.drop_table("contact_list")
