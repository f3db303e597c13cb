"""Online redeem over REST at 16 concurrent connections, beside the same server's HTTP floor.

For each backend (a scratch SQLite file; a scratch PostgreSQL database, dropped afterwards) this
starts a real Tessera server (one uvicorn process, as `tessera serve`) on 127.0.0.1, creates an
event with N tickets, a single-entry list and a paired device, then drives it with `wrk` (C, one
thread by default: a Python load generator in one process tops out near 2,650 req/s, below what
the server can do), each contender for the same time at the same concurrency:

  healthz  GET /healthz: the HTTP floor of this server on this machine (no database)
  redeem   POST /api/v1/checkin/redeem, each request a new scan_id and the next unused ticket
           (QR token), so every scan should be accepted; `accepted` counts them from the bodies

The contenders alternate for `--rounds` rounds (a noisy neighbour on the machine then hits both
alike). Prints one JSON line per contender with its median round (backend, requests, per_second,
p50_ms, p99_ms, accepted, non_2xx, errors, every round's per_second and p99, versions), then a
`ratio` line: median redeem per_second / median healthz per_second.

`wrk` is Debian's package: installed with apt-get when missing (needs root), else the run stops.
Run: ``.venv/bin/python bench/redeem_rest.py [--backend sqlite|postgresql|both] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _wsbench import (  # bench/ is on sys.path when a script of it runs
    VERSIONS,
    scratch_database,
    setup_event,
    tessera_server,
    wait_ready,
)

# One Lua state per wrk thread. Each thread walks its own stride of the ticket list (thread t of
# T takes tickets t, t+T, t+2T...), so no ticket is scanned twice while the list lasts; scan_ids
# are thread id + counter. `done` runs in the main state and sums the threads' counts.
LUA = r"""
local codes, nthreads, offset = {}, tonumber(os.getenv("BENCH_THREADS")), 0
local threads, created = {}, 0
function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(os.getenv("BENCH_CODES")) do codes[#codes + 1] = line end
  list_id, token, path = os.getenv("BENCH_LIST"), os.getenv("BENCH_TOKEN"), os.getenv("BENCH_PATH")
  i, accepted = 0, 0
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
end
function request()
  if path == "/healthz" then return wrk.format("GET", path) end
  local n = i * nthreads + tid
  i = i + 1
  local body = '{"scan_id":"b' .. tid .. "-" .. i .. '","code":"' .. codes[(n % #codes) + 1]
    .. '","list_id":"' .. list_id .. '"}'
  return wrk.format("POST", path, headers, body)
end
function response(status, hdrs, body)
  if status == 200 and (path == "/healthz" or body:find('"verdict":"accepted"', 1, true)) then
    accepted = accepted + 1
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("accepted") end
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
    '"accepted":%d,"non_2xx":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, total, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def ensure_wrk() -> str:
    """The path of `wrk`, installed from Debian with apt-get if it is missing."""
    found = shutil.which("wrk")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, timeout=300)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def run_wrk(base: str, env: dict[str, str], args: argparse.Namespace, seconds: float) -> Any:
    """One bounded wrk run; its `done` JSON line, parsed."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA)
        script.flush()
        command = [args.wrk, "-t", str(args.threads), "-c", str(args.clients)]
        command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "10s", "-s", script.name, base]
        environment = {"BENCH_THREADS": str(args.threads), "PATH": "/usr/bin:/bin", **env}
        done = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=seconds + 60
        )
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr or done.stdout}")
    return json.loads(done.stdout.strip().splitlines()[-1])


async def bench_backend(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(backend, Path(tmp)) as url:
            with tessera_server(url, Path(tmp) / "keys") as (base, _pid):
                await wait_ready(base)
                event = await setup_event(base, url, tickets=args.tickets, devices=1)
                codes = Path(tmp) / "codes.txt"
                codes.write_text("\n".join(event.codes) + "\n")
                env = {"BENCH_CODES": str(codes), "BENCH_LIST": event.list_id}
                env["BENCH_TOKEN"] = event.device_tokens[0]
                run_wrk(base, env | {"BENCH_PATH": "/healthz"}, args, 1.0)  # warm-up
                paths = {"healthz": "/healthz", "redeem": "/api/v1/checkin/redeem"}
                rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
                for _ in range(args.rounds):  # interleaved: a noisy neighbour hits both alike
                    for name, path in paths.items():
                        result = run_wrk(base, env | {"BENCH_PATH": path}, args, args.seconds)
                        result["per_second"] = round(result["requests"] / result["seconds"])
                        rounds[name].append(result)
                for name, results in rounds.items():
                    line = {"bench": "redeem_rest", "backend": backend, "contender": name}
                    line |= {"clients": args.clients, "wrk_threads": args.threads}
                    line |= _median_round(results) | {"versions": VERSIONS}
                    print(json.dumps(line), flush=True)
                ratio = (
                    _median_round(rounds["redeem"])["per_second"]
                    / _median_round(rounds["healthz"])["per_second"]
                )
                line = {"bench": "redeem_rest", "backend": backend, "rounds": args.rounds}
                print(json.dumps(line | {"ratio_redeem_to_healthz": round(ratio, 3)}), flush=True)


def _median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput, and every round's throughput and p99 beside it."""
    ordered = sorted(results, key=lambda r: r["per_second"])
    middle = dict(ordered[len(ordered) // 2])
    middle["rounds_per_second"] = [r["per_second"] for r in results]
    middle["rounds_p99_ms"] = [r["p99_ms"] for r in results]
    return middle


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=4.0, help="per round and contender")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--tickets", type=int, default=40_000)
    args = parser.parse_args()
    args.wrk = ensure_wrk()
    args.seconds = min(args.seconds, 30.0)  # bounded runs
    args.rounds = max(1, min(args.rounds, 9))
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            await bench_backend(backend, args)


if __name__ == "__main__":
    asyncio.run(main())
