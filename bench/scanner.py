"""The door client (`tessera-scan`): offline verdict, first sync, memory, each beside a baseline.

1. Offline verdict (ARCHITECTURE §9: p99 < 1 ms, journal write included). A `LocalStore` in a
   temporary directory holds an N-ticket snapshot (one ticket type, one list of max_entries 1,
   20 % of the tickets already in through another door); a `SyncCore` that is not connected
   (offline) gets 5,000 scans through `core.scan(code, now)` + `core.take_events()`, each timed
   (between scans, untimed, the WAL checkpoint the shell runs every CHECKPOINT_EVERY writes)
   alone: 70 % signed QR tokens of distinct tickets, 15 % readable codes of distinct tickets,
   10 % tickets already in (`already_redeemed`), 5 % garbage (unknown codes, forged tokens). The
   scan is journaled (committed, synchronous=FULL) before its verdict event exists, so the commit
   and its fsync are inside every sample. Baseline, same run, same codes in the same order: the
   pure decision, `protocol.token.verify_ticket_token` + `protocol.rules.decide` on in-memory
   dicts (TicketState by id and by code, Presence by ticket), with no store and no journal; the
   ratio is what the store and the durable journal cost. The two must agree verdict by verdict.
   Beside them: `store.journal(...)` alone (the commit and its fsync, which dominate on some
   disks), with the temporary directory's file system, interleaved with the disk's own floor (a
   4 KiB overwrite + fdatasync of a preallocated file, as baseline); and `core.tick(now)` right
   after an offline scan, which is what the door's pump runs next (it recomputes the local
   counters) and so what a scan arriving just after waits for.
2. First sync of N tickets, download to ready (§9: < 5 s). A real `tessera serve` on a fresh
   SQLite file is seeded as bench/snapshot.py seeds it (its `_seed`), a device is paired through
   `scanner_client.pairing.pair` and its credentials saved with `scanner_client.home` in a
   temporary TESSERA_SCAN_HOME, then `scanner_client.door.sync_once` (what `tessera-scan sync`
   runs) runs in its own process (bench/_scanner_sync.py), timed from start to exit and, inside,
   around `sync_once` alone: connect, snapshot, load into the store, catch up. Its peak RSS is
   its own VmHWM at its end (bench/_scanner_sync.py says why not wait4's rusage). Baseline, same
   run, same server, same device: the download + zstd-decompress + msgpack decode of
   bench/snapshot.py (`_download`); the ratio is the cost of the door's store load, process start
   and websocket on top. One download before both, not reported, warms the server. Beside
   them: the decode into `Snapshot` structs + `LocalStore.replace_snapshot` of the downloaded
   body in this process (the load alone).
3. Client memory with N tickets: the peak RSS of a process that opens the synced store and runs
   1,000 offline scans (readable codes of the synced tickets, a tick every 100 scans), beside a
   bare `python -c "import scanner_client.core"` as the baseline.

Prints a machine line, then per measure one JSON line per contender (versions included) and a
ratio line. Run: ``.venv/bin/python bench/scanner.py [N]`` (default 100,000: about 40 s on two
cores, half of it seeding the server).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.snapshot import _cpu_seconds, _download, _seed, _server_pid  # noqa: E402
from protocol.ids import new_id, normalize_code  # noqa: E402
from protocol.reasons import Reason  # noqa: E402
from protocol.rules import Direction, Presence, ScanFacts, Verdict, apply, decide  # noqa: E402
from protocol.sync import PresenceEntry, list_rules, presence_of, ticket_state  # noqa: E402
from protocol.token import (  # noqa: E402
    TicketClaims,
    load_public_jwk,
    sign_ticket_token,
    verify_ticket_token,
)
from scanner_client.core import SyncCore  # noqa: E402
from scanner_client.door import CHECKPOINT_EVERY  # noqa: E402
from scanner_client.events import VerdictShown  # noqa: E402
from scanner_client.home import STORE_FILE, save_credentials  # noqa: E402
from scanner_client.pairing import pair, parse_pairing_input  # noqa: E402
from scanner_client.store import JournalEntry, LocalStore, Snapshot, decode_snapshot  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import Database  # noqa: E402
from tests.live import live_server  # noqa: E402
from tests.scanner_client.helpers import (  # noqa: E402
    DEVICE,
    EVENT,
    OTHER_DEVICE,
    T0,
    World,
    core_for,
    make_world,
)

VERSIONS = {
    "python": platform.python_version(),
    "sqlite": sqlite3.sqlite_version,
    "msgspec": version("msgspec"),
    "cryptography": version("cryptography"),
    "zstandard": version("zstandard"),
    "httpx": version("httpx"),
    "websockets": version("websockets"),
}
SCANS = 5_000
MIX = {"qr": 0.70, "readable": 0.15, "already_in": 0.10, "garbage": 0.05}
CHECKED_IN = 0.20  # share of the tickets already in through another door
JOURNAL_COMMITS = 1_000
TICKS = 20
MEMORY_SCANS = 1_000
SEED = 20_310_614
HELPER = ROOT / "bench" / "_scanner_sync.py"
BARE = (  # the baseline child: the engine's import, then its own VmHWM, nothing else
    "import re, scanner_client.core;"
    "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1];"
    "print('{\"vm_hwm_mb\": %.1f}' % (int(hwm) / 1024))"
)


# --- helpers ----------------------------------------------------------------------------------


def _summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    total = sum(ordered)

    def ms(ns: int) -> float:
        return round(ns / 1e6, 3)

    return {
        "p50_ms": ms(ordered[len(ordered) // 2]),
        "p99_ms": ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]),
        "max_ms": ms(ordered[-1]),
        "per_second": round(len(ordered) / (total / 1e9)) if total else 0,
    }


def _filesystem(path: Path) -> dict[str, object]:
    """The mount that holds `path` (from /proc/mounts: the longest mount point above it)."""
    real = os.path.realpath(path)
    best = ("?", "/", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind, options = line.split()[:4]
        mount = mount.replace("\\040", " ")
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[1]):
            best = (device, mount, kind, options)
    stats = os.statvfs(path)
    return {
        "path": real,
        "type": best[2],
        "device": best[0],
        "mount": best[1],
        "options": best[3],
        "block_size": stats.f_bsize,
    }


def _machine() -> dict[str, object]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "kernel": platform.release(),
    }


def _run_child(
    argv: list[str], *, env: dict[str, str] | None = None, stdin: bytes = b""
) -> tuple[dict[str, Any], float]:
    """Run a child that prints one JSON object to its end: that object and the wall seconds
    from start to exit."""
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[1:3]} exited {done.returncode}:\n{done.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result, seconds


def _print(line: dict[str, object]) -> None:
    print(json.dumps(line), flush=True)


# --- 1. offline verdict -----------------------------------------------------------------------


def _offline_world(tickets: int) -> World:
    """make_world's event with CHECKED_IN of its tickets in through OTHER_DEVICE at T0."""
    world = make_world(tickets)
    list_id = world.list_id
    inside = [
        PresenceEntry(ticket.id, list_id, 1, True, new_id(), T0, "North", OTHER_DEVICE)
        for ticket in world.snapshot.tickets[: int(tickets * CHECKED_IN)]
    ]
    world.snapshot = msgspec.structs.replace(world.snapshot, checkins=inside)
    return world


def _offline_codes(world: World, scans: int) -> tuple[list[str], dict[str, int]]:
    """The scan mix of the module comment, shuffled; every ticket scanned at most once."""
    rng = random.Random(SEED)
    tickets = len(world.snapshot.tickets)
    first_out = int(tickets * CHECKED_IN)
    counts = {kind: int(scans * share) for kind, share in MIX.items()}
    counts["qr"] += scans - sum(counts.values())
    outside = rng.sample(range(first_out, tickets), counts["qr"] + counts["readable"])
    codes = [world.token(n) for n in outside[: counts["qr"]]]
    codes += [world.ticket(n).code for n in outside[counts["qr"] :]]
    for k, n in enumerate(rng.sample(range(first_out), counts["already_in"])):
        codes.append(world.token(n) if k % 2 else world.ticket(n).code)  # half QR, half typed
    forger = Ed25519PrivateKey.generate()
    for k in range(counts["garbage"]):
        if k % 3 == 0:
            codes.append(f"{new_id(4)}-{new_id(4)}")  # a readable code of no ticket
        elif k % 3 == 1:
            claims = TicketClaims(jti=new_id(16), evt=EVENT, ver=1)
            codes.append(sign_ticket_token(claims, forger, world.kid))  # forged signature
        else:
            codes.append(f"{new_id(20)}.{new_id(40)}.{new_id(60)}")  # dotted junk
    rng.shuffle(codes)
    return codes, counts


def _scan_at(n: int) -> float:
    return T0.timestamp() + n  # one scan a second: no code is read twice, debounce never fires


def _door_verdicts(core: SyncCore, codes: list[str]) -> tuple[list[int], list[Verdict]]:
    samples: list[int] = []
    verdicts: list[Verdict] = []
    clock = time.perf_counter_ns
    for n, code in enumerate(codes):
        started = clock()
        core.scan(code, _scan_at(n))
        events = core.take_events()
        samples.append(clock() - started)
        # What the shell (scanner_client.door) does once the verdict is out, between scans.
        if core.store.writes_since_checkpoint >= CHECKPOINT_EVERY:  # type: ignore[attr-defined]
            core.store.checkpoint()  # type: ignore[attr-defined]
        shown = [event for event in events if isinstance(event, VerdictShown)]
        assert len(shown) == 1, (code, events)
        verdicts.append(Verdict(shown[0].accepted, shown[0].reason))
    return samples, verdicts


def _pure_decider(world: World) -> Callable[[str, float], Verdict]:
    """verify_ticket_token + decide on dicts: the decision with no store and no journal."""
    snapshot = world.snapshot
    types = {entry.id: entry for entry in snapshot.ticket_types}
    states = {t.id: ticket_state(t, types[t.ticket_type_id], EVENT) for t in snapshot.tickets}
    by_code = {t.code: t.id for t in snapshot.tickets}
    presence = {p.ticket_id: presence_of(p) for p in snapshot.checkins}
    rules = list_rules(snapshot.lists[0], EVENT)
    keys = dict(load_public_jwk(jwk) for jwk in snapshot.keys)

    def decide_pure(code: str, now: float) -> Verdict:
        scanned_at = datetime.fromtimestamp(now, UTC)
        if "." in code:
            claims = verify_ticket_token(code, keys, event_id=EVENT, now=now)
            if isinstance(claims, Reason):
                return Verdict(False, claims)
            state = states.get(claims.jti)
            if state is None or claims.ver > state.version:
                return Verdict(False, Reason.INVALID)
            if claims.ver < state.version:
                return Verdict(False, Reason.REVOKED)
        else:
            ticket_id = by_code.get(normalize_code(code))
            state = states.get(ticket_id) if ticket_id else None
        before = presence.get(state.id, Presence()) if state else Presence()
        facts = ScanFacts(direction=Direction.ENTRY, scanned_at=scanned_at)
        verdict = decide(facts, state, before, rules)
        if verdict.accepted and state is not None:
            presence[state.id] = apply(before, facts, rules, gate=None, device_id=DEVICE)
        return verdict

    return decide_pure


def _pure_verdicts(world: World, codes: list[str]) -> tuple[list[int], list[Verdict]]:
    decide_pure = _pure_decider(world)
    samples: list[int] = []
    verdicts: list[Verdict] = []
    clock = time.perf_counter_ns
    for n, code in enumerate(codes):
        started = clock()
        verdict = decide_pure(code, _scan_at(n))
        samples.append(clock() - started)
        verdicts.append(verdict)
    return samples, verdicts


def _journal_commits(
    store: LocalStore, list_id: str, directory: Path
) -> tuple[list[int], list[int]]:
    """`store.journal` alone, each commit followed by the disk's floor: a 4 KiB overwrite of a
    preallocated file + fdatasync (what one WAL commit costs at least). Interleaved, so both
    see the same load on the disk."""
    journal: list[int] = []
    floor: list[int] = []
    clock = time.perf_counter_ns
    block = b"x" * 4096
    descriptor = os.open(directory / "fsync-floor", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, bytes(256 * 4096))
        os.fsync(descriptor)
        for n in range(JOURNAL_COMMITS):
            entry = JournalEntry(
                scan_id=f"journal-bench-{n:06d}",
                code=f"{new_id(4)}-{new_id(4)}",
                list_id=list_id,
                direction=Direction.ENTRY,
                scanned_at=T0,
                ticket_id=None,
                state="queued",
                door_verdict="rejected",
                door_reason="invalid",
            )
            started = clock()
            store.journal(entry, now=_scan_at(SCANS + n))
            journal.append(clock() - started)
            started = clock()
            os.pwrite(descriptor, block, (n % 256) * 4096)
            os.fdatasync(descriptor)
            floor.append(clock() - started)
    finally:
        os.close(descriptor)
    return journal, floor


def _ticks_after_scans(core: SyncCore, world: World) -> list[int]:
    """core.tick(now) right after an offline scan, as the door's pump runs it."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    last = len(world.snapshot.tickets) - 1
    for n in range(TICKS):
        now = _scan_at(2 * SCANS + n)
        core.scan(world.ticket(last - n).code, now)
        started = clock()
        core.tick(now)
        samples.append(clock() - started)
        core.take_events()
    return samples


def _tally(verdicts: list[Verdict]) -> dict[str, int]:
    return dict(Counter("accepted" if v.accepted else str(v.reason) for v in verdicts))


def offline_verdict(tickets: int) -> None:
    world = _offline_world(tickets)
    scans = min(SCANS, int(tickets * (1 - CHECKED_IN) / (MIX["qr"] + MIX["readable"])))
    codes, mix = _offline_codes(world, scans)  # signed here, outside the timing
    with tempfile.TemporaryDirectory() as directory:
        filesystem = _filesystem(Path(directory))
        store = LocalStore.open(Path(directory) / STORE_FILE)
        loaded = time.perf_counter()
        store.replace_snapshot(world.snapshot, now=T0.timestamp())
        loaded = time.perf_counter() - loaded
        core = core_for(store)
        door_ns, door = _door_verdicts(core, codes)
        journal_ns, floor_ns = _journal_commits(store, world.list_id, Path(directory))
        tick_ns = _ticks_after_scans(core, world)
        store.close()
    pure_ns, pure = _pure_verdicts(world, codes)
    mismatches = sum(a != b for a, b in zip(door, pure, strict=True))
    assert mismatches == 0, f"{mismatches} verdicts differ between the door and the pure decision"
    door_stats, pure_stats = _summary(door_ns), _summary(pure_ns)
    common = {"tickets": tickets, "checked_in": int(tickets * CHECKED_IN), "scans": len(codes)}
    _print(
        {
            "name": "tessera_scan.offline_verdict",
            **common,
            **door_stats,
            "mix": mix,
            "verdicts": _tally(door),
            "timed": "core.scan + core.take_events, journal commit (synchronous=FULL) inside",
            "store_load_seconds": round(loaded, 2),
            "filesystem": filesystem,
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "name": "baseline.pure_decision",
            **common,
            **pure_stats,
            "verdicts": _tally(pure),
            "timed": "verify_ticket_token + rules.decide on in-memory dicts, no store, no journal",
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "ratio": "offline verdict / pure decision",
            "p50": round(door_stats["p50_ms"] / pure_stats["p50_ms"], 1),
            "p99": round(door_stats["p99_ms"] / pure_stats["p99_ms"], 1),
            "target_p99_ms": 1.0,
            "met": door_stats["p99_ms"] < 1.0,
        }
    )
    journal, floor = _summary(journal_ns), _summary(floor_ns)
    _print(
        {
            "name": "tessera_scan.journal_commit",
            "commits": JOURNAL_COMMITS,
            **journal,
            "timed": "LocalStore.journal alone: one INSERT, autocommit, WAL, synchronous=FULL",
            "filesystem": filesystem["type"],
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "name": "baseline.overwrite_4k_fdatasync",
            "writes": JOURNAL_COMMITS,
            **floor,
            "timed": "os.pwrite 4 KiB in place + os.fdatasync, interleaved with the commits",
            "filesystem": filesystem["type"],
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "ratio": "journal commit / 4 KiB overwrite + fdatasync",
            "p50": round(journal["p50_ms"] / floor["p50_ms"], 1),
            "p99": round(journal["p99_ms"] / floor["p99_ms"], 1),
        }
    )
    _print(
        {
            "name": "tessera_scan.tick_after_offline_scan",
            "tickets": tickets,
            "ticks": TICKS,
            **_summary(tick_ns),
            "timed": "core.tick(now) after each offline scan: the local counters recomputed",
            "versions": VERSIONS,
        }
    )


# --- 2. first sync ----------------------------------------------------------------------------


async def _organiser_token(settings: Settings) -> str:
    from server.auth.service import create_token

    database = Database(settings.database_url)
    async with database.transaction() as session:
        _, secret = await create_token(session, "bench")
    await database.dispose()
    return secret


def _pair_home(base_url: str, organiser: str, event_id: str, home: Path) -> str:
    """Create a list and a device as the organiser, pair it as a door would; its token."""
    headers = {"Authorization": f"Bearer {organiser}"}
    with httpx.Client(base_url=base_url, headers=headers) as api:
        api.post(f"/api/v1/events/{event_id}/checkin-lists", json={"name": "Gate"})
        device = api.post(f"/api/v1/events/{event_id}/devices", json={"name": "Door"}).json()
    credentials = asyncio.run(pair(parse_pairing_input(device["pairing_uri"], None)))
    save_credentials(home, credentials)
    return credentials.token


def _load_in_process(body: dict[str, object], directory: Path) -> float:
    """decode_snapshot + replace_snapshot of the downloaded snapshot, in this process."""
    raw = msgspec.msgpack.encode(body)
    started = time.perf_counter()
    snapshot: Snapshot = decode_snapshot(raw)
    store = LocalStore.open(directory / "load.db")
    store.replace_snapshot(snapshot, now=time.time())
    store.close()
    return time.perf_counter() - started


def first_sync(tickets: int, root: Path) -> tuple[Path, list[str]]:
    """Measure section 2 in `root`; the synced home and the readable codes of its tickets."""
    settings = Settings(database_url=f"sqlite:///{root / 'bench.db'}", keys_dir=str(root / "keys"))
    seeded = time.perf_counter()
    event_id = asyncio.run(_seed(settings, tickets))
    seeded = time.perf_counter() - seeded
    organiser = asyncio.run(_organiser_token(settings))
    home = root / "scan-home"
    env = {**os.environ, "TESSERA_SCAN_HOME": str(home)}
    with live_server(settings, root / "server.log") as base_url:
        token = _pair_home(base_url, organiser, event_id, home)
        _download(base_url, token)  # warm-up: the server's first snapshot is not measured
        pid = _server_pid()
        cpu = _cpu_seconds(pid)
        inside, wall = _run_child([sys.executable, str(HELPER), "sync", str(home)], env=env)
        cpu = _cpu_seconds(pid) - cpu
        snapshot, download_seconds, size = _download(base_url, token)
    store = LocalStore.open(home / STORE_FILE)
    in_store = store.ticket_count()
    store.close()
    files = {name: (home / name).stat().st_size for name in os.listdir(home) if "door.db" in name}
    load_seconds = _load_in_process(snapshot, root)
    synced = snapshot["tickets"]
    assert isinstance(synced, list) and in_store == len(synced) == tickets, (in_store, tickets)
    _print(
        {
            "name": "tessera_scan.first_sync",
            "tickets": tickets,
            "seconds": round(wall, 3),
            "seconds_inside_sync_once": inside["seconds"],
            "client_peak_rss_mb": inside["vm_hwm_mb"],
            "tickets_in_store": in_store,
            "store_bytes": files,
            "report": inside["report"],
            "server_cpu_seconds": round(cpu, 2),
            "seed_seconds": round(seeded, 1),
            "timed": "process start to exit of sync_once (connect, snapshot, store load, catch up)",
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "name": "baseline.snapshot_download_decode",
            "tickets": tickets,
            "seconds": round(download_seconds, 3),
            "bytes": size,
            "timed": "GET snapshot (zstd) + decompress + msgpack decode, bench/snapshot.py",
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "name": "tessera_scan.snapshot_store_load",
            "tickets": tickets,
            "seconds": round(load_seconds, 3),
            "timed": "decode_snapshot + LocalStore.replace_snapshot in this process",
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "ratio": "first sync (process start to exit) / download + decode",
            "value": round(wall / download_seconds, 2),
            "inside_sync_once": round(inside["seconds"] / download_seconds, 2),
            "target_seconds": 5.0,
            "met": wall < 5.0,
        }
    )
    return home, [str(ticket["code"]) for ticket in synced[:MEMORY_SCANS]]


# --- 3. memory --------------------------------------------------------------------------------


def memory(home: Path, codes: list[str], tickets: int) -> None:
    env = {**os.environ, "TESSERA_SCAN_HOME": str(home)}
    scanned, _ = _run_child(
        [sys.executable, str(HELPER), "scan", str(home)], env=env, stdin="\n".join(codes).encode()
    )
    bare, bare_wall = _run_child([sys.executable, "-c", BARE], env=env)
    rss, bare_rss = scanned["vm_hwm_mb"], bare["vm_hwm_mb"]
    _print(
        {
            "name": "tessera_scan.offline_scans_memory",
            "tickets": tickets,
            "scans": scanned["scans"],
            "peak_rss_mb": rss,
            "scan_seconds": scanned["seconds"],
            "verdicts": scanned["verdicts"],
            "timed": "VmHWM of a process: open the synced store, 1,000 offline scans, 10 ticks",
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "name": "baseline.import_scanner_client_core",
            "peak_rss_mb": bare_rss,
            "seconds": round(bare_wall, 3),
            "timed": "VmHWM of python -c 'import scanner_client.core' (then reading its status)",
            "versions": VERSIONS,
        }
    )
    _print(
        {
            "ratio": "door with N tickets / bare import, peak RSS",
            "value": round(rss / bare_rss, 2),
            "above_baseline_mb": round(rss - bare_rss, 1),
        }
    )


def main(tickets: int) -> None:
    _print({"machine": _machine(), "tickets": tickets, "versions": VERSIONS})
    offline_verdict(tickets)
    with tempfile.TemporaryDirectory(prefix="tessera-scan-bench-") as directory:
        home, codes = first_sync(tickets, Path(directory))
        memory(home, codes, tickets)
    _print({"machine_after": _machine()})


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        raise SystemExit(__doc__)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
