"""Apply the Alembic migrations (`tessera migrate`); the app never relies on `create_all`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from server.db.engine import Database

__all__ = ["alembic_config", "migrate"]

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(database: Database, revision: str = "head") -> None:
    """Upgrade the database to `revision`, in one transaction where the database allows it."""

    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade)
