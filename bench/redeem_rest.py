"""Online redeem over REST at 16 concurrent connections, beside the same server's HTTP floor.

For each backend (a scratch SQLite file; a scratch PostgreSQL database, dropped afterwards) this
starts a real Tessera server as `make run` does (`tessera serve`: one uvicorn process, access log
on; `--no-access-log` turns it off) on 127.0.0.1, creates an event with N tickets, a single-entry
list and `--devices` paired devices, then drives it with `wrk` (C, one thread by default: a
Python load generator in one process tops out near 2,650 req/s, below what the server can do),
each contender for the same time at the same concurrency:

  healthz  GET /healthz: the HTTP floor of this server on this machine (no database)
  redeem   POST /api/v1/checkin/redeem, each request a new scan_id and the next unused ticket
           (QR token), so every scan should be accepted; `accepted` counts them from the bodies

and then drives the same two paths from asyncio in this process, the same 16 in flight over 16
keep-alive connections, same device rotation, fresh tickets and scan_ids, same duration:

  healthz_asyncio, redeem_asyncio  httpx.AsyncClient, one pool of 16 connections
  healthz_streams, redeem_streams  bare asyncio streams, one per worker (hand-written HTTP/1.1,
                                   answers read by Content-Length): asyncio without an HTTP library

Every contender reports the client's own CPU beside the server's (`client_cpu_ms` per request,
`client_cpu_share` of one core: wrk's from getrusage of the finished child, asyncio's from this
process's /proc), since client and server share the machine's two cores. A `compare` line gives
each asyncio generator's median against wrk's (per_second, p50, p99, server CPU) and a warning
goes to stderr when the rates are more than 20 % apart (docs/performance.md, "wrk against
asyncio", says why httpx is).

Devices. Each device may redeem ITEM_RATE scans/s (50) with bursts of ITEM_BURST (5,000)
(server/checkin/writer.py); a scan over it answers 429. A real door scans a few codes a second,
so one device at 2,000 scans/s would measure the limiter, not the redeem path. The Lua script
therefore sends request n with the token of device n mod D (each connection cycles through all
of them): with the default 128 devices, 3,000 scans/s is 23 scans/s per device, inside the
sustained rate, so no device ever draws on its burst. The run stops with status 1 if any redeem
answered anything but 200 `accepted` (429s and other statuses are counted separately).

Each wrk run takes its own tickets (an offset past every ticket the earlier runs sent) and its
own scan_ids, so no round replays an earlier round's scans (a replay answers the stored result:
fast and `accepted`, but not a redeem).

The contenders alternate for `--rounds` rounds (a noisy neighbour on the machine then hits both
alike). Prints one JSON line per contender with its median round: backend, requests, per_second
(200 answers per second; for redeem only the `accepted` ones, so fast 429s never look like a
fast run), p50_ms, p99_ms, accepted, rate_limited, other_non_200, errors, server_cpu_ms per
request and the server's CPU share of one core (/proc), the same for the client, every
round's per_second and p99, versions. Then the `compare` line, and a `ratio` line: median redeem
per_second / median healthz per_second, with the busiest device's scans beside its budget.

`wrk` is Debian's package: installed with apt-get when missing (needs root), else the run stops.
Run: ``.venv/bin/python bench/redeem_rest.py [--backend sqlite|postgresql|both] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _wsbench import (  # bench/ is on sys.path when a script of it runs
    ITEM_RATE,
    VERSIONS,
    cpu_seconds,
    item_budget,
    percentile,
    scratch_database,
    setup_event,
    tessera_server,
    wait_ready,
)

# One Lua state per wrk thread. Request n of a run (thread t of T sends n = t, t+T, t+2T...)
# takes ticket OFFSET + n and device n mod D, so no ticket is scanned twice while the list lasts
# and the load is spread evenly over the devices; scan_ids are RUN-n. `done` runs in the main
# state and sums the threads' counts.
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
  list_id, path, run = os.getenv("BENCH_LIST"), os.getenv("BENCH_PATH"), os.getenv("BENCH_RUN")
  offset = tonumber(os.getenv("BENCH_OFFSET"))
  sent, accepted, limited, other = 0, 0, 0, 0
end
function request()
  local n = sent * nthreads + tid
  sent = sent + 1
  if path == "/healthz" then return wrk.format("GET", path) end
  local body = '{"scan_id":"' .. run .. "-" .. n .. '","code":"'
    .. codes[((offset + n) % #codes) + 1] .. '","list_id":"' .. list_id .. '"}'
  return wrk.format("POST", path, tokens[(n % #tokens) + 1], body)
end
function response(status, hdrs, body)
  if status == 200 then
    if path == "/healthz" or body:find('"verdict":"accepted"', 1, true) then
      accepted = accepted + 1
    end
  elseif status == 429 then
    limited = limited + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local sum = {sent = 0, accepted = 0, limited = 0, other = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(sum) do sum[key] = sum[key] + thread:get(key) end
  end
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
    '"accepted":%d,"rate_limited":%d,"other_non_200":%d,"errors":%d,"sent":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, sum.accepted, sum.limited, sum.other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    sum.sent))
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


def run_wrk(
    base: str, env: dict[str, str], args: argparse.Namespace, seconds: float, pid: int
) -> Any:
    """One bounded wrk run; its `done` JSON line, parsed, with the server's CPU beside it."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA)
        script.flush()
        command = [args.wrk, "-t", str(args.threads), "-c", str(args.clients)]
        command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "10s", "-s", script.name, base]
        environment = {"BENCH_THREADS": str(args.threads), "PATH": "/usr/bin:/bin", **env}
        cpu, own = cpu_seconds(pid), _children_cpu()
        done = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=seconds + 60
        )
        cpu, own = cpu_seconds(pid) - cpu, _children_cpu() - own
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr or done.stdout}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # 200 answers (redeem: `accepted` ones) only: a run of fast 429s never looks like a fast run
    result["per_second"] = round(result["accepted"] / result["seconds"])
    result["answers_per_second"] = round(result["requests"] / result["seconds"])
    result["server_cpu_ms"] = round(cpu * 1000 / max(1, result["requests"]), 3)
    result["server_cpu_share"] = round(cpu / result["seconds"], 2)  # of one core
    result["client_cpu_ms"] = round(own * 1000 / max(1, result["requests"]), 3)
    result["client_cpu_share"] = round(own / result["seconds"], 2)
    return result


def _lines(path: str) -> list[str]:
    return Path(path).read_text().split()


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished (waited-for) children: wrk's."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_asyncio(
    base: str,
    env: dict[str, str],
    args: argparse.Namespace,
    seconds: float,
    pid: int,
    generator: str = "asyncio",
) -> dict[str, Any]:
    """The same load as `run_wrk` from asyncio in this process: httpx, or bare asyncio streams.

    `args.clients` workers, each with one request in flight (closed loop, as wrk's connections),
    over as many HTTP/1.1 keep-alive connections: one httpx.AsyncClient whose pool holds them
    (`generator` "asyncio"), or one asyncio stream per worker writing the request bytes and
    reading the answer by its Content-Length ("streams", the asyncio floor without an HTTP
    library). Request n takes ticket OFFSET + n, device n mod D and scan_id RUN-n, as the Lua
    script does. Latency is timed per request up to its body read. The client's own CPU is this
    process's (/proc, all threads): it shares the machine's two cores with the server.
    """
    path = env["BENCH_PATH"]
    codes, tokens = _lines(env["BENCH_CODES"]), _lines(env["BENCH_TOKENS"])
    list_id, run, offset = env["BENCH_LIST"], env["BENCH_RUN"], int(env["BENCH_OFFSET"])
    counts = {"sent": 0, "accepted": 0, "limited": 0, "other": 0, "errors": 0}
    latencies: list[float] = []

    def body(n: int) -> bytes:
        code = codes[(offset + n) % len(codes)]
        return f'{{"scan_id":"{run}-{n}","code":"{code}","list_id":"{list_id}"}}'.encode()

    def count(status: int, content: bytes) -> None:
        if status == 200:
            if path == "/healthz" or b'"verdict":"accepted"' in content:
                counts["accepted"] += 1
        elif status == 429:
            counts["limited"] += 1
        else:
            counts["other"] += 1

    async def closed_loop(send: Any, deadline: float) -> None:
        while time.perf_counter() < deadline:
            n = counts["sent"]
            counts["sent"] += 1
            began = time.perf_counter()
            try:
                status, content = await send(n)
            except (OSError, asyncio.IncompleteReadError, httpx.HTTPError, ValueError):
                counts["errors"] += 1
                return  # this connection is gone
            latencies.append(time.perf_counter() - began)
            count(status, content)

    async def measured(loops: list[Any]) -> tuple[float, float, float]:
        cpu, own, started = cpu_seconds(pid), cpu_seconds(os.getpid()), time.perf_counter()
        await asyncio.gather(*(closed_loop(send, started + seconds) for send in loops))
        elapsed = time.perf_counter() - started  # to the last answer, in-flight ones included
        return elapsed, cpu_seconds(pid) - cpu, cpu_seconds(os.getpid()) - own

    if generator == "asyncio":
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
            headers = [
                {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
                for token in tokens
            ]

            async def send_httpx(n: int) -> tuple[int, bytes]:
                if path == "/healthz":
                    response = await client.get(path)
                else:
                    response = await client.post(
                        path, content=body(n), headers=headers[n % len(headers)]
                    )
                return response.status_code, response.content

            # open the pool's connections first, as wrk connects before its clock starts
            await asyncio.gather(*(client.get("/healthz") for _ in range(args.clients)))
            elapsed, cpu, own = await measured([send_httpx] * args.clients)
    else:
        host, _, port = base.removeprefix("http://").partition(":")
        heads = [
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: "
            for token in tokens
        ]
        streams = [await asyncio.open_connection(host, int(port)) for _ in range(args.clients)]

        def sender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
            async def send_stream(n: int) -> tuple[int, bytes]:
                if path == "/healthz":
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                else:
                    payload = body(n)
                    request = heads[n % len(heads)] + f"{len(payload)}\r\n\r\n"
                    writer.write(request.encode() + payload)
                answer = await reader.readuntil(b"\r\n\r\n")
                lines = answer.split(b"\r\n")
                fields = dict(line.split(b":", 1) for line in lines[1:] if b":" in line)
                length = {k.strip().lower(): v for k, v in fields.items()}[b"content-length"]
                return int(lines[0].split()[1]), await reader.readexactly(int(length))

            return send_stream

        try:
            elapsed, cpu, own = await measured([sender(r, w) for r, w in streams])
        finally:
            for _, writer in streams:
                writer.close()
    requests = len(latencies)
    result: dict[str, Any] = {
        "requests": requests,
        "seconds": round(elapsed, 3),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
        "accepted": counts["accepted"],
        "rate_limited": counts["limited"],
        "other_non_200": counts["other"],
        "errors": counts["errors"],
        "sent": counts["sent"],
    }
    result["per_second"] = round(result["accepted"] / elapsed)
    result["answers_per_second"] = round(requests / elapsed)
    result["server_cpu_ms"] = round(cpu * 1000 / max(1, requests), 3)
    result["server_cpu_share"] = round(cpu / elapsed, 2)
    result["client_cpu_ms"] = round(own * 1000 / max(1, requests), 3)
    result["client_cpu_share"] = round(own / elapsed, 2)
    return result


async def bench_backend(backend: str, args: argparse.Namespace) -> bool:
    """Run one backend's rounds and print them; False when a redeem was not a 200 accepted."""
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(backend, Path(tmp)) as url:
            server = tessera_server(url, Path(tmp) / "keys", access_log=args.access_log)
            with server as (base, pid):
                await wait_ready(base)
                event = await setup_event(base, url, tickets=args.tickets, devices=args.devices)
                codes, tokens = Path(tmp) / "codes.txt", Path(tmp) / "tokens.txt"
                codes.write_text("\n".join(event.codes) + "\n")
                tokens.write_text("\n".join(event.device_tokens) + "\n")
                env = {"BENCH_CODES": str(codes), "BENCH_TOKENS": str(tokens)}
                env |= {"BENCH_LIST": event.list_id, "BENCH_OFFSET": "0", "BENCH_RUN": "w"}
                run_wrk(base, env | {"BENCH_PATH": "/healthz"}, args, 1.0, pid)  # warm-up
                # name: (path, load generator); wrk and asyncio take turns in every round
                contenders = {
                    "healthz": ("/healthz", "wrk"),
                    "redeem": ("/api/v1/checkin/redeem", "wrk"),
                    "healthz_asyncio": ("/healthz", "asyncio"),
                    "redeem_asyncio": ("/api/v1/checkin/redeem", "asyncio"),
                    "healthz_streams": ("/healthz", "streams"),
                    "redeem_streams": ("/api/v1/checkin/redeem", "streams"),
                }
                rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
                offset, started = 0, time.monotonic()
                for n in range(args.rounds):  # interleaved: a noisy neighbour hits all alike
                    for name, (path, generator) in contenders.items():
                        own = {
                            "BENCH_PATH": path,
                            "BENCH_OFFSET": str(offset),
                            "BENCH_RUN": f"{generator[0]}{n}",  # w0, a0, s0, w1...: own ids
                        }
                        if generator == "wrk":
                            result = run_wrk(base, env | own, args, args.seconds, pid)
                        else:
                            result = await run_asyncio(
                                base, env | own, args, args.seconds, pid, generator
                            )
                        rounds[name].append(result)
                        if path != "/healthz":
                            offset += result["sent"]
                elapsed = time.monotonic() - started
                ok = True
                medians = {name: _median_round(results) for name, results in rounds.items()}
                for name, results in rounds.items():
                    line: dict[str, Any] = {"bench": "redeem_rest", "backend": backend}
                    line["contender"] = name
                    line |= {"generator": contenders[name][1], "clients": args.clients}
                    line |= {"wrk_threads": args.threads}
                    line |= {"devices": args.devices, "access_log": args.access_log}
                    line |= medians[name] | {"versions": VERSIONS}
                    print(json.dumps(line), flush=True)
                    if contenders[name][0] != "/healthz":
                        refused = [r for r in results if r["accepted"] != r["requests"]]
                        ok = ok and not refused and all(r["errors"] == 0 for r in results)
                ratio = medians["redeem"]["per_second"] / medians["healthz"]["per_second"]
                # each asyncio generator against wrk on the same path: ratios of the medians
                line = {"bench": "redeem_rest", "backend": backend, "compare": "asyncio/wrk"}
                for name in ("healthz", "redeem"):
                    wrk = medians[name]
                    line[name] = {"client_cpu_ms_wrk": wrk["client_cpu_ms"]}
                    line[name] |= {"client_cpu_share_wrk": wrk["client_cpu_share"]}
                    for generator in ("asyncio", "streams"):
                        aio = medians[f"{name}_{generator}"]
                        line[name][generator] = {
                            key: round(aio[key] / wrk[key], 3) if wrk[key] else None
                            for key in ("per_second", "p50_ms", "p99_ms", "server_cpu_ms")
                        } | {
                            "client_cpu_ms": aio["client_cpu_ms"],
                            "client_cpu_share": aio["client_cpu_share"],
                        }
                        agreement = line[name][generator]["per_second"]
                        if agreement is not None and abs(agreement - 1) > 0.2:
                            print(
                                f"redeem_rest: {name}: {generator}/wrk {agreement:.2f}, more than "
                                "20 % apart (see client_cpu_ms; docs/performance.md says why)",
                                file=sys.stderr,
                            )
                print(json.dumps(line), flush=True)
                busiest = math.ceil(offset / args.devices)  # scans of the busiest device
                redeems = [r for name in contenders if "redeem" in name for r in rounds[name]]
                fastest = max(r["per_second"] for r in redeems) / args.devices
                line = {"bench": "redeem_rest", "backend": backend, "rounds": args.rounds}
                line |= {"ratio_redeem_to_healthz": round(ratio, 3)}
                line |= {
                    "scans_sent": offset,
                    "tickets": len(event.codes),
                    "max_scans_per_device": busiest,
                    "item_budget_per_device": round(item_budget(elapsed)),
                    "peak_scans_per_second_per_device": round(fastest, 1),
                    "item_rate_per_device": ITEM_RATE,
                    "all_redeems_200_accepted": ok,
                }
                print(json.dumps(line), flush=True)
                if offset > len(event.codes):
                    print("redeem_rest: tickets ran out (raise --tickets)", file=sys.stderr)
                    ok = False
                if fastest > ITEM_RATE:
                    print(
                        f"redeem_rest: {fastest:.0f} scans/s per device is over the "
                        f"{ITEM_RATE:g}/s budget: a longer run would hit 429 (raise --devices)",
                        file=sys.stderr,
                    )
                return ok


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
    parser.add_argument("--devices", type=int, default=128, help="paired devices sharing the load")
    parser.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="as make run, without it"
    )
    args = parser.parse_args()
    args.wrk = ensure_wrk()
    args.seconds = min(args.seconds, 30.0)  # bounded runs
    args.rounds = max(1, min(args.rounds, 9))
    ok = True
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            ok = await bench_backend(backend, args) and ok
    if not ok:
        raise SystemExit("redeem_rest: some redeems were not 200 accepted (see the counts above)")


if __name__ == "__main__":
    asyncio.run(main())
