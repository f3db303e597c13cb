"""Whether a failure means "the database cannot be reached now", as opposed to a bug.

PostgreSQL stopped or restarting shows up as refused connections, sessions terminated by an
administrator's shutdown, and pooled connections found dead. Callers answer those with a "try
again later" (HTTP 503 `database_unavailable`, websocket close 1013) and a one-line warning,
not a 500 and a traceback: nothing is wrong with the request, and everything recovers when the
database is back (docs/decisions/0014-database-unavailable.md).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

__all__ = ["DATABASE_RETRY_AFTER", "is_database_unavailable"]

# Seconds a client is told to wait when the database is out of reach (PostgreSQL restarting).
DATABASE_RETRY_AFTER = 5

_ASYNCPG_UNAVAILABLE = frozenset(
    {
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "ConnectionFailureError",
    }
)


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached now: refused or
    reset connections, a server shutting down, a pooled connection found dead."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | InterfaceError | ConnectionError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if (
            type(current).__module__.startswith("asyncpg")
            and type(current).__name__ in _ASYNCPG_UNAVAILABLE
        ):
            return True
        current = current.__cause__ or current.__context__
    return False
