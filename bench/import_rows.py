"""Import 100,000 rows into an event on SQLite, beside raw signing of as many tokens, in one run.

Contenders, each in its own process, each on a fresh migrated SQLite file (WAL) in a temp dir:

- ``tessera.import_analyze``: `analyze_invitations` of an N-row `;` CSV (email, language, name),
  the real service path: read, check every row, look for duplicates; writes nothing;
- ``tessera.import_commit``: `commit_invitations` of the same file with ``confirm=true``: the
  analysis again, then N bookings confirmed with their tickets issued and signed, links,
  change log, in one transaction, committed;
- ``tessera.sign_ticket_token`` and ``pyjwt.encode``: the N signatures alone (same claims).

Prints one JSON line per contender (wall seconds, CPU seconds of the process, peak RSS,
versions), then the ratio of the commit to raw signing. Targets (issue 15): analyze < 5 s,
commit < 15 s. The machine's load average is printed too: these figures are only comparable
when it is low. Run: ``.venv/bin/python bench/import_rows.py [N]`` (N defaults to 100,000).
"""

import asyncio
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

VERSIONS = {
    "python": platform.python_version(),
    "sqlite": sqlite3.sqlite_version,
    "sqlalchemy": version("sqlalchemy"),
    "cryptography": version("cryptography"),
    "pyjwt": version("pyjwt"),
}
CONTENDERS = (
    "tessera.import_analyze",
    "tessera.import_commit",
    "tessera.sign_ticket_token",
    "pyjwt.encode",
)
LANGUAGES = ("fr", "en", "de", "FR", "Deutsch")


def rows_csv(n: int) -> bytes:
    """A `;` CSV of `n` guests with a header, as an organiser's spreadsheet exports it."""
    lines = ["email;langue;nom"]
    lines += [f"guest{i}@example.org;{LANGUAGES[i % 5]};Guest number {i}" for i in range(n)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


async def _event(root: Path) -> tuple[object, str, str]:
    from server.config import Settings
    from server.db import Database
    from server.db.migrate import migrate
    from server.events.schemas import EventCreate, TicketTypeCreate
    from server.events.service import create_event, create_ticket_type
    from server.keys.service import Keystore, ensure_signing_key

    settings = Settings(
        database_url=f"sqlite:///{root / 'bench.db'}",
        keys_dir=str(root / "keys"),
        base_url="https://tickets.bench",
        access_log=False,
    )
    database = Database(settings.database_url)
    await migrate(database)
    async with database.transaction() as session:
        await ensure_signing_key(session, Keystore(settings.keys_path))
        event = await create_event(
            session,
            EventCreate(
                name="Bench night", starts_at=datetime(2027, 3, 14, 19, tzinfo=UTC), timezone="UTC"
            ),
        )
        ticket_type = await create_ticket_type(session, event.id, TicketTypeCreate(name="Std"))
    await database.dispose()
    return settings, event.id, ticket_type.id


async def _import(n: int, commit: bool) -> dict[str, object]:
    from server.db import Database
    from server.imports.invitations import (
        InvitationOptions,
        Source,
        analyze_invitations,
        commit_invitations,
    )
    from server.keys.service import KeyRing, Keystore
    from server.tickets.service import TicketIssuer

    data = rows_csv(n)
    with tempfile.TemporaryDirectory() as directory:
        settings, event_id, type_id = await _event(Path(directory))
        database = Database(settings.database_url)  # type: ignore[attr-defined]
        options = InvitationOptions(ticket_type_id=type_id, confirm=True)
        source = Source(data, "guests.csv", "text/csv")
        keyring = KeyRing(Keystore(settings.keys_path))  # type: ignore[attr-defined]
        cpu, started = time.process_time(), time.perf_counter()
        async with database.transaction() as session:
            if commit:
                issuer = TicketIssuer(await keyring.keys(session), settings.public_base_url)  # type: ignore[attr-defined]
                result = await commit_invitations(
                    session, event_id, source, options, issuer, settings=settings
                )
            else:
                result = await analyze_invitations(session, event_id, source, options)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await database.dispose()
    return {
        "n": n,
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "bookings": len(result.written.booking_ids),
        "tickets": result.written.tickets,
        "valid_rows": len(result.analysis.entries),
        "file_bytes": len(data),
    }


def _sign(n: int, name: str) -> dict[str, object]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from protocol.ids import EVENT_ID_LENGTH, TICKET_ID_LENGTH, new_id
    from protocol.token import TicketClaims, sign_ticket_token

    key, kid, event = Ed25519PrivateKey.generate(), new_id(8), new_id(EVENT_ID_LENGTH)
    jtis = [new_id(TICKET_ID_LENGTH) for _ in range(n)]
    cpu, started = time.process_time(), time.perf_counter()
    if name == "pyjwt.encode":
        for jti in jtis:
            jwt.encode({"jti": jti, "evt": event, "ver": 1}, key, "EdDSA", headers={"kid": kid})
    else:
        for jti in jtis:
            sign_ticket_token(TicketClaims(jti=jti, evt=event, ver=1), key, kid)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"n": n, "seconds": round(elapsed, 2), "cpu_seconds": round(cpu, 2)}


def measure(name: str, n: int) -> dict[str, object]:
    if name == "tessera.import_analyze":
        result = asyncio.run(_import(n, commit=False))
    elif name == "tessera.import_commit":
        result = asyncio.run(_import(n, commit=True))
    else:
        result = _sign(n, name)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"name": name, **result, "peak_rss_mb": round(peak_kib / 1024), "versions": VERSIONS}


def main(n: int) -> None:
    results = {}
    for name in CONTENDERS:
        command = [sys.executable, __file__, str(n), name]
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(line.strip(), flush=True)
        results[name] = json.loads(line)
    commit = results["tessera.import_commit"]
    sign = results["tessera.sign_ticket_token"]
    machine = f"{platform.machine()} {platform.system()} {os.cpu_count()} CPUs".strip()
    print(
        json.dumps(
            {
                "ratio": "tessera.import_commit / tessera.sign_ticket_token seconds",
                "value": round(commit["seconds"] / sign["seconds"], 2),
                "cpu_value": round(commit["cpu_seconds"] / sign["cpu_seconds"], 2),
                "targets_seconds": {"analyze": 5, "commit": 15},
                "machine": machine,
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        raise SystemExit(__doc__)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    if len(sys.argv) > 2:
        print(json.dumps(measure(sys.argv[2], count)))
    else:
        main(count)
