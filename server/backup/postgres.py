"""PostgreSQL backups with `pg_dump --format=custom`, and their restore with pg_restore and psql.

`backup`: pg_dump reads one snapshot (its own repeatable-read transaction), so the archive is
consistent while instances write. It goes to a private temp file beside PATH, is then read back
whole by pg_restore (a truncated or unreadable archive fails there) and its schema revision is
taken from its `alembic_version` data, before it takes PATH's name.

`restore`: the archive is checked the same way before the target is touched. pg_restore turns it
into SQL that streams into one psql session inside one transaction, preceded (when the target has
tables) by dropping them; COMMIT is sent only after pg_restore finished without error, and psql
stops at the first error (ON_ERROR_STOP), so a failure anywhere leaves the target as it was.

The password of the URL reaches the tools through PGPASSWORD, never their command line (which
`ps` shows to every user of the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from server.backup.common import (
    BackupError,
    BackupReport,
    RestoreReport,
    check_target_file,
    cleaned,
    file_kind,
    held_rows,
    judge_revision,
    private_temp,
    publish,
    schema_head,
)

__all__ = ["backup_pg", "libpq_url", "restore_pg"]

COUNTED = ("event", "ticket", "scan")
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ", re.MULTILINE)

# Everything of the public schema goes, in the restore's own transaction (see the module doc).
_DROP_ALL = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd') LOOP
    EXECUTE format('DROP TYPE IF EXISTS public.%I CASCADE', r.typname);
  END LOOP;
END $$;
"""


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL of a Tessera database URL (no driver, no password) and the environment
    that carries the password."""
    parts = urlsplit(url)
    env = {"PGPASSWORD": unquote(parts.password)} if parts.password else {}
    netloc = parts.hostname or ""
    if parts.hostname and ":" in parts.hostname:  # an IPv6 address
        netloc = f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    # asyncpg's `ssl=` is libpq's `sslmode=`; the rest passes as it is.
    query = [("sslmode" if k == "ssl" else k, v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(("postgresql", netloc, parts.path, urlencode(query), "")), env


def _tool(name: str, instead: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on PATH: install the PostgreSQL client tools (the server's major"
            f" version or newer), or run yourself: {instead}"
        )
    return found


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def backup_pg(url: str, target: Path) -> BackupReport:
    """pg_dump the database at `url` into `target` (0600), read back whole; raises BackupError."""
    check_target_file(target)
    dsn, env = libpq_url(url)
    command = f"pg_dump --format=custom --file={shlex.quote(str(target))} {shlex.quote(dsn)}"
    pg_dump = _tool("pg_dump", command)
    started = time.monotonic()
    with cleaned(private_temp(target)) as temp:
        done = _run([pg_dump, "--format=custom", f"--file={temp}", f"--dbname={dsn}"], env)
        if done.returncode:
            raise BackupError(f"pg_dump failed, no backup written: {_last_line(done.stderr)}")
        revision, tables = _read_archive(temp, shown=target)
        if revision is None:
            raise BackupError(
                f"{dsn} is not a Tessera database (no schema revision): run `tessera migrate`"
            )
        size = temp.stat().st_size
        publish(temp, target)
    seconds = time.monotonic() - started
    check = f"read back whole by pg_restore, {len(tables)} tables"
    return BackupReport(target, "pg_dump", size, revision, seconds, check=check)


def _read_archive(path: Path, *, shown: Path | None = None) -> tuple[str | None, frozenset[str]]:
    """The archive's schema revision and tables, after pg_restore read all of it."""
    shown = shown or path
    pg_restore = _tool("pg_restore", f"pg_restore --list {shlex.quote(str(path))}")
    listed = _run([pg_restore, "--list", str(path)])
    if listed.returncode:
        raise BackupError(f"{shown} is truncated or damaged: {_last_line(listed.stderr)}")
    tables = frozenset(name for schema, name in _TOC_TABLE.findall(listed.stdout))
    whole = _run([pg_restore, f"--file={os.devnull}", str(path)])
    if whole.returncode:
        raise BackupError(f"{shown} is truncated or damaged: {_last_line(whole.stderr)}")
    if "alembic_version" not in tables:
        return None, tables
    data = _run([pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(path)])
    rows = data.stdout.split("FROM stdin;\n", 1)[-1].split("\n\\.", 1)[0].split()
    return (rows[0] if len(rows) == 1 else None), tables


async def _target_state(url: str) -> tuple[dict[str, int], bool]:
    """The target's tables that hold rows (with their counts) and whether it has any table."""
    import asyncpg

    dsn, env = libpq_url(url)
    try:
        connection = await asyncpg.connect(dsn, password=env.get("PGPASSWORD"))
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot connect to {dsn}: {exc} (create the database first)") from None
    try:
        names = [
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ]
        held = {}
        for name in names:
            count = await connection.fetchval(f'SELECT count(*) FROM public."{name}"')
            if count:
                held[name] = int(count)
        anything = bool(names) or bool(
            await connection.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public'"
            )
        )
        return held, anything
    finally:
        await connection.close()


def restore_pg(url: str, source: Path, *, force: bool = False) -> RestoreReport:
    """Restore the pg_dump archive `source` into the database at `url`; raises BackupError."""
    if file_kind(source) == "sqlite":
        raise BackupError(
            f"{source} is a SQLite backup, but TESSERA_DATABASE_URL is PostgreSQL: restore it"
            " with a sqlite:/// database URL"
        )
    started = time.monotonic()
    dsn, env = libpq_url(url)
    psql = _tool("psql", f"pg_restore --single-transaction --dbname={shlex.quote(dsn)} ARCHIVE")
    revision, tables = _read_archive(source)
    revision = judge_revision(source, revision, tables)
    held, has_tables = asyncio.run(_target_state(url))
    if held and not force:
        listed = held_rows(held)
        raise BackupError(
            f"{dsn} already holds data ({listed}): restore into a new database (createdb, then"
            " another TESSERA_DATABASE_URL), or give --force to replace it"
        )
    _stream(
        source,
        [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", f"--dbname={dsn}"],
        env,
        drop_first=has_tables,
    )
    counts = asyncio.run(_counts(url))
    seconds = time.monotonic() - started
    return RestoreReport(source, dsn, revision, schema_head(), seconds, counts)


def _stream(source: Path, psql: list[str], env: dict[str, str], *, drop_first: bool) -> None:
    """pg_restore's SQL into psql in one transaction, committed only if all of it went in."""
    pg_restore = _tool("pg_restore", "")
    full_env = {**os.environ, **env}
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        sql = subprocess.Popen(
            [pg_restore, "--no-owner", "--no-privileges", "--file=-", str(source)],
            stdout=subprocess.PIPE,
            stderr=restore_err,
        )
        session = subprocess.Popen(
            psql, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err, env=full_env
        )
        assert sql.stdout is not None and session.stdin is not None
        complete = _feed(sql.stdout, session.stdin, drop_first=drop_first, done=sql)
        session.wait()
        failed = _message(psql_err) if session.returncode else None
        if not complete and failed is None:
            failed = _message(restore_err)
    if failed is not None or session.returncode:
        raise BackupError(f"the restore failed and changed nothing: {failed}")


def _feed(
    sql: IO[bytes], stdin: IO[bytes], *, drop_first: bool, done: subprocess.Popen[bytes]
) -> bool:
    """Copy the SQL between BEGIN and COMMIT; True if COMMIT was sent (pg_restore succeeded)."""
    try:
        stdin.write(b"BEGIN;\n")
        if drop_first:
            stdin.write(_DROP_ALL.encode())
        shutil.copyfileobj(sql, stdin, 1 << 16)
        if done.wait() == 0:
            stdin.write(b"COMMIT;\n")
            return True
        return False
    except BrokenPipeError:  # psql stopped at an error: its message says which
        done.kill()
        done.wait()
        return False
    finally:
        sql.close()
        with contextlib.suppress(BrokenPipeError):
            stdin.close()


def _message(stream: IO[bytes]) -> str:
    stream.seek(0)
    return _last_line(stream.read().decode(errors="replace"))


async def _counts(url: str) -> dict[str, int]:
    import asyncpg

    dsn, env = libpq_url(url)
    connection = await asyncpg.connect(dsn, password=env.get("PGPASSWORD"))
    try:
        return {
            name: int(await connection.fetchval(f'SELECT count(*) FROM public."{name}"'))
            for name in COUNTED
        }
    finally:
        await connection.close()
