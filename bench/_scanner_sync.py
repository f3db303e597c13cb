"""A door process for bench/scanner.py, which measures it from outside (wall time, peak RSS).

  sync HOME   `scanner_client.door.sync_once` (what `tessera-scan sync` runs) on a paired home;
              prints {"seconds": time inside sync_once, "report": its SyncReport, "vm_hwm_mb"}.
  scan HOME   opens the home's synced store and runs the codes read from stdin (one a line)
              through an offline `SyncCore`, ticking it after every 100th scan as the door's pump
              would (the tick recomputes the local counters); prints {"scans", "seconds",
              "verdicts", "vm_hwm_mb"}.

Each mode imports only what it needs, so its peak RSS is that of the door code it runs. The peak
is the process's own VmHWM read at its end: the parent's rusage of a child (wait4 ru_maxrss) also
counts the forked parent's pages before exec, so it reads the parent's size for a small child.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICK_EVERY = 100


def vm_hwm_mb() -> float:
    """This process's peak resident set so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def _sync(home: Path) -> dict[str, object]:
    import msgspec

    from scanner_client.door import sync_once

    started = time.perf_counter()
    report = asyncio.run(sync_once(home, timeout=120))
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "report": msgspec.to_builtins(report)}


def _scan(home: Path, codes: list[str]) -> dict[str, object]:
    import itertools

    from scanner_client.core import SyncCore
    from scanner_client.events import VerdictShown
    from scanner_client.home import STORE_FILE, load_credentials
    from scanner_client.store import LocalStore

    credentials = load_credentials(home)
    assert credentials is not None, home
    store = LocalStore.open(home / STORE_FILE)
    numbers = itertools.count(1)
    core = SyncCore(
        store,
        device_id=credentials.device_id,
        event_id=credentials.event_id,
        new_scan_id=lambda: f"bench-{next(numbers):06d}",
    )
    verdicts: Counter[str] = Counter()
    now = time.time()
    started = time.perf_counter()
    for n, code in enumerate(codes):
        core.scan(code, now + n)
        if n % TICK_EVERY == TICK_EVERY - 1:
            core.tick(now + n)
        for event in core.take_events():
            if isinstance(event, VerdictShown):
                verdicts["accepted" if event.accepted else str(event.reason)] += 1
    seconds = time.perf_counter() - started
    store.close()
    return {"scans": len(codes), "seconds": round(seconds, 3), "verdicts": dict(verdicts)}


def main(argv: list[str]) -> None:
    mode, home = argv[0], Path(argv[1])
    if mode == "sync":
        result = _sync(home)
    elif mode == "scan":
        result = _scan(home, [line.strip() for line in sys.stdin if line.strip()])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps({**result, "vm_hwm_mb": vm_hwm_mb()}))


if __name__ == "__main__":
    if len(sys.argv) != 3 or {"-h", "--help"} & set(sys.argv[1:]):
        raise SystemExit(__doc__)
    main(sys.argv[1:])
