"""Online redeem over REST as doors use it, beside bare Litestar on uvicorn in the same run.

The shape of issue 17's table. For each backend (a scratch SQLite file by default; a scratch
PostgreSQL database with `--backend postgresql|both`, dropped afterwards) this starts a real
Tessera server as `make run` does (`tessera serve`: one uvicorn process, access log on, to a
file; `--no-access-log` turns it off), seeds an event with `--tickets` (20,000) tickets in
confirmed bookings of 50, a single-entry list and `--devices` (4) paired devices at 4 gates, and
drives it from an asyncio client in this process (bench/_httpbench.py: `--clients` (16)
keep-alive connections, one request in flight on each, connection c speaking for device c mod 4):

  bare     POST /redeem of bench/_echo_app.py on uvicorn (bare Litestar: strict body decode and
           a redeem-sized answer, no database, no access log): the floor of this stack
  redeem   POST /api/v1/checkin/redeem, request n scanning ticket n of the round's share with a
           fresh scan_id: every scan should be `accepted` (each answer is checked)

They alternate for `--rounds` rounds (a noisy neighbour then hits both). A redeem round ends when
its share of the tickets (tickets / rounds) is used or after `--seconds`, whichever comes first;
a bare round lasts `--bare-seconds`. Each prints, per contender, its median round: scans/s (only
200 `accepted` answers count), p50, p99, max, the server's CPU per answer and share of a core
(its whole process tree, /proc) and the client's own, then a `ratio` line (redeem / bare).

Devices and the scan-item budget: each device may redeem 50 scans/s with bursts of 5,000
(server/checkin/writer.py). 20,000 tickets over 4 devices is 5,000 scans per device for the
whole run: inside the burst whatever the speed, so the run never measures the limiter (it
exits 1 if any redeem answers anything but 200 `accepted`).

`--compare` answers a different question (docs/performance.md, "Why wrk gave twice"): wrk (C)
with one device and the access log off, as the first pass measured, against this asyncio client
with 4 devices and the access log on, and every cell between (generator x devices x access
log), SQLite, in one run; each cell's devices are fresh, and each prints both sides' CPU.
`wrk` is Debian's package (apt-get install wrk).

Run: ``.venv/bin/python bench/redeem_rest.py [--backend sqlite|postgresql|both] [--compare]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _httpbench import bare_server, http_load, post, profiled, tree_cpu_seconds, wait_port
from _wsbench import (  # bench/ is on sys.path when a script of it runs
    VERSIONS,
    free_port,
    pair_devices,
    scratch_database,
    setup_event,
    tessera_server,
    wait_ready,
)

from server.db import Database

REDEEM = "/api/v1/checkin/redeem"
HOST = "127.0.0.1"


def _redeems(event: Any, tokens: list[str], first: int, run: str) -> tuple[Any, list[str]]:
    """`make(connection, n)` for redeem: ticket `first + n`, device `connection mod len(tokens)`."""
    list_id = event.list_id

    def make(connection: int, n: int) -> bytes:
        code = event.codes[first + n]
        body = f'{{"scan_id":"{run}-{n}","code":"{code}","list_id":"{list_id}"}}'.encode()
        return post(HOST, REDEEM, body, tokens[connection % len(tokens)])

    return make, tokens


def _bare(connection: int, n: int) -> bytes:
    body = f'{{"scan_id":"b-{n}","code":"{"x" * 200}","list_id":"l"}}'.encode()
    return post(HOST, "/redeem", body)


def _median(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput, every round's throughput and p99 beside it."""
    ordered = sorted(results, key=lambda r: r["per_second"])
    middle = dict(ordered[len(ordered) // 2])
    middle["rounds_per_second"] = [r["per_second"] for r in results]
    middle["rounds_p99_ms"] = [r["p99_ms"] for r in results]
    middle["rounds_server_cpu_ms"] = [r["server_cpu_ms"] for r in results]
    return middle


def _all_accepted(results: list[dict[str, Any]]) -> bool:
    return all(r["accepted"] == r["requests"] and not r["errors"] for r in results)


async def bench_backend(backend: str, args: argparse.Namespace) -> bool:
    """One backend's rounds, printed; False when a redeem was not a 200 `accepted`."""
    bare_port = free_port()
    with tempfile.TemporaryDirectory() as tmp, bare_server(bare_port) as bare_pid:
        async with scratch_database(backend, Path(tmp)) as url:
            server = tessera_server(url, Path(tmp) / "keys", access_log=args.access_log)
            with server as (base, pid):
                await wait_ready(base)
                await wait_port(HOST, bare_port)
                began = time.monotonic()
                event = await setup_event(
                    base, url, tickets=args.tickets, devices=args.devices, per_booking=50
                )
                seeded = time.monotonic() - began
                targets = {
                    "redeem": (int(base.rpartition(":")[2]), pid),
                    "bare": (bare_port, bare_pid),
                }
                with profiled(pid):
                    rounds = await _rounds(args, event, targets)
    common = {"bench": "redeem_rest", "backend": backend, "clients": args.clients}
    common |= {"devices": args.devices, "access_log": args.access_log}
    medians = {name: _median(results) for name, results in rounds.items()}
    for name, median in medians.items():
        print(json.dumps(common | {"contender": name} | median | {"versions": VERSIONS}))
    ratio = {
        key: round(medians["redeem"][key] / medians["bare"][key], 3)
        for key in ("per_second", "p99_ms", "server_cpu_ms")
        if medians["bare"][key]
    }
    line = common | {"ratio_redeem_to_bare": ratio, "rounds": args.rounds}
    line |= {"tickets": args.tickets, "seed_seconds": round(seeded, 1)}
    line |= {"scans_per_device": -(-args.tickets // args.devices)}
    ok = _all_accepted(rounds["redeem"])
    print(json.dumps(line | {"all_redeems_200_accepted": ok}), flush=True)
    return ok


async def _rounds(
    args: argparse.Namespace, event: Any, targets: dict[str, tuple[int, int]]
) -> dict[str, list[dict[str, Any]]]:
    """Bare and redeem rounds, alternating; `targets` gives each one's (port, pid)."""
    share = args.tickets // args.rounds
    rounds: dict[str, list[dict[str, Any]]] = {"bare": [], "redeem": []}
    for n in range(args.rounds):
        port, pid = targets["bare"]
        bare = await http_load(
            HOST,
            port,
            _bare,
            connections=args.clients,
            seconds=args.bare_seconds,
            server_pid=pid,
            accepted_marker=b'"scan_id"',
        )
        rounds["bare"].append(bare)
        port, pid = targets["redeem"]
        make, _ = _redeems(event, event.device_tokens, n * share, f"r{n}")
        redeem = await http_load(
            HOST,
            port,
            make,
            connections=args.clients,
            seconds=args.seconds,
            limit=share,
            server_pid=pid,
        )
        rounds["redeem"].append(redeem)
    return rounds


# --compare: wrk against the asyncio client ------------------------------------------------

# One Lua state per wrk thread. Request n of a run takes ticket OFFSET + n and device n mod D;
# scan_ids are RUN-n. `done` runs in the main state and sums the threads' counts.
LUA = r"""
local codes, tokens, nthreads = {}, {}, tonumber(os.getenv("BENCH_THREADS"))
local threads, created = {}, 0
function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(os.getenv("BENCH_CODES")) do codes[#codes + 1] = line end
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    tokens[#tokens + 1] = {["Content-Type"] = "application/json",
                           ["Authorization"] = "Bearer " .. line}
  end
  list_id, run = os.getenv("BENCH_LIST"), os.getenv("BENCH_RUN")
  offset = tonumber(os.getenv("BENCH_OFFSET"))
  sent, accepted, other = 0, 0, 0
end
function request()
  local n = sent * nthreads + tid
  sent = sent + 1
  local body = '{"scan_id":"' .. run .. "-" .. n .. '","code":"'
    .. codes[offset + n + 1] .. '","list_id":"' .. list_id .. '"}'
  return wrk.format("POST", "/api/v1/checkin/redeem", tokens[(n % #tokens) + 1], body)
end
function response(status, hdrs, body)
  if status == 200 and body:find('"verdict":"accepted"', 1, true) then
    accepted = accepted + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local sum = {sent = 0, accepted = 0, other = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(sum) do sum[key] = sum[key] + thread:get(key) end
  end
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
    '"accepted":%d,"other":%d,"errors":%d,"sent":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, sum.accepted, sum.other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    sum.sent))
end
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(base: str, env: dict[str, str], args: argparse.Namespace, pid: int) -> dict[str, Any]:
    """One wrk run (1 thread, `args.clients` connections, `args.cell_seconds`), with CPU."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA)
        script.flush()
        command = [args.wrk, "-t", "1", "-c", str(args.clients), "--timeout", "10s"]
        command += ["-d", f"{round(args.cell_seconds)}s", "-s", script.name, base]
        cpu, own = tree_cpu_seconds(pid), _children_cpu()
        done = subprocess.run(
            command,
            env={"BENCH_THREADS": "1", "PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=args.cell_seconds + 60,
        )
        cpu, own = tree_cpu_seconds(pid) - cpu, _children_cpu() - own
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr or done.stdout}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    seconds, answers = result["seconds"], max(1, result["requests"])
    result["per_second"] = round(result["accepted"] / seconds)
    result["server_cpu_ms"] = round(cpu * 1000 / answers, 3)
    result["server_cpu_share"] = round(cpu / seconds, 2)
    result["client_cpu_ms"] = round(own * 1000 / answers, 3)
    result["client_cpu_share"] = round(own / seconds, 2)
    return result


async def compare(args: argparse.Namespace) -> bool:
    """wrk x asyncio x 1 or 4 devices x access log on or off, SQLite, each cell fresh devices."""
    cells = [(g, d) for g in ("asyncio", "wrk") for d in (4, 1)]
    per_cell = args.cell_scans
    # wrk runs by time: room for 3,000 scans/s in each of its cells
    room = max(per_cell, round(3_000 * args.cell_seconds))
    tickets = room * len(cells) * 2 * args.compare_rounds
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database("sqlite", Path(tmp)) as url:
            keys, offset, event, device_count = Path(tmp) / "keys", 0, None, 0
            results: dict[str, list[dict[str, Any]]] = {}
            for access_log in (True, False):
                with tessera_server(url, keys, access_log=access_log) as (base, pid):
                    await wait_ready(base)
                    if event is None:
                        event = await setup_event(base, url, tickets=tickets, devices=0)
                        codes = Path(tmp) / "codes.txt"
                        codes.write_text("\n".join(event.codes) + "\n")
                    port = int(base.rpartition(":")[2])
                    for _ in range(args.compare_rounds):
                        for generator, devices in cells:
                            database = Database(url)
                            try:
                                tokens = await pair_devices(
                                    database, event.event_id, devices, device_count
                                )
                            finally:
                                await database.dispose()
                            device_count += devices
                            run = f"c{device_count}"
                            if generator == "wrk":
                                token_file = Path(tmp) / f"{run}.tokens"
                                token_file.write_text("\n".join(tokens) + "\n")
                                env = {"BENCH_CODES": str(codes), "BENCH_TOKENS": str(token_file)}
                                env |= {"BENCH_LIST": event.list_id, "BENCH_RUN": run}
                                env |= {"BENCH_OFFSET": str(offset)}
                                result = run_wrk(base, env, args, pid)
                                offset += result["sent"]
                            else:
                                make, _ = _redeems(event, tokens, offset, run)
                                result = await http_load(
                                    HOST,
                                    port,
                                    make,
                                    connections=args.clients,
                                    seconds=args.cell_seconds,
                                    limit=per_cell,
                                    server_pid=pid,
                                )
                                offset += result["requests"] + result["errors"]
                            ok = ok and result["accepted"] == result["requests"]
                            key = f"{generator}/{devices}dev/log_{'on' if access_log else 'off'}"
                            results.setdefault(key, []).append(result)
            if offset > len(event.codes):
                print("redeem_rest: tickets ran out", file=sys.stderr)
                ok = False
    for key, rounds in results.items():
        generator, devices, log = key.split("/")
        line = {"bench": "redeem_rest", "compare": key, "generator": generator}
        line |= {"devices": int(devices[0]), "access_log": log == "log_on"}
        line |= _median(rounds)
        print(json.dumps(line), flush=True)
    rate = {k: statistics.median(r["per_second"] for r in v) for k, v in results.items()}
    summary = {"bench": "redeem_rest", "compare": "summary"}
    summary["wrk_1dev_log_off_over_asyncio_4dev_log_on"] = round(
        rate["wrk/1dev/log_off"] / rate["asyncio/4dev/log_on"], 3
    )
    print(json.dumps(summary | {"all_redeems_200_accepted": ok}), flush=True)
    return ok


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="a redeem round at most")
    parser.add_argument("--bare-seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument("--compare", action="store_true", help="wrk against asyncio, see above")
    parser.add_argument("--cell-seconds", type=float, default=2.0, help="--compare: per cell")
    parser.add_argument("--cell-scans", type=int, default=4_000, help="--compare: at most")
    parser.add_argument("--compare-rounds", type=int, default=1)
    args = parser.parse_args()
    args.seconds = min(args.seconds, 30.0)  # bounded runs
    args.rounds = max(1, min(args.rounds, 9))
    if args.tickets > 5_000 * args.devices:
        raise SystemExit("redeem_rest: more than 5,000 scans per device (its burst): add devices")
    if args.compare:
        args.wrk = shutil.which("wrk") or sys.exit("redeem_rest --compare needs wrk")
        if not await compare(args):
            raise SystemExit("redeem_rest: some redeems were not 200 accepted")
        return
    ok = True
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            ok = await bench_backend(backend, args) and ok
    if not ok:
        raise SystemExit("redeem_rest: some redeems were not 200 accepted (see the counts above)")


if __name__ == "__main__":
    asyncio.run(main())
