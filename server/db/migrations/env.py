"""Alembic environment: runs on the connection handed over by `server.db.migrate`."""

from alembic import context

from server.db import Base
from server.db import models as _models  # noqa: F401  (fills Base.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `tessera migrate`, which passes the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
