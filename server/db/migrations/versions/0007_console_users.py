"""console users, sign-in links and sessions: server/console/models.py

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:10:00

Three new tables, nothing existing changes. Secrets are stored as SHA-256 hex (64 characters).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_user",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_user")),
        sa.UniqueConstraint("email_key", name=op.f("uq_console_user_email_key")),
    )
    for table in ("console_signin_link", "console_session"):
        op.create_table(
            table,
            sa.Column("id", sa.String(length=16), nullable=False),
            sa.Column("user_id", sa.String(length=16), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("created_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
            sa.Column("expires_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
            *(
                [sa.Column("used_at", server.db.base.UTCDateTime(timezone=True), nullable=True)]
                if table == "console_signin_link"
                else []
            ),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["console_user.id"],
                name=op.f(f"fk_{table}_user_id_console_user"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("token_hash", name=op.f(f"uq_{table}_token_hash")),
        )
        op.create_index(op.f(f"ix_{table}_user_id"), table, ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_console_session_user_id"), table_name="console_session")
    op.drop_table("console_session")
    op.drop_index(op.f("ix_console_signin_link_user_id"), table_name="console_signin_link")
    op.drop_table("console_signin_link")
    op.drop_table("console_user")
