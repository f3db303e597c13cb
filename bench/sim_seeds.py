"""Seeds of the door simulation per CPU second (issue 18): aiosqlite inline against its thread.

In process, the same seeds run in turn under both drivers (seed by seed, alternating, so that a
machine whose load moves treats both alike), after one warm-up seed each (imports, the app, the
template database):

  thread  aiosqlite as the server runs it: every call handed to the connection's thread
  inline  tests/simulation/inline_sqlite.py: the same calls, run as they are queued (what
          `make sim` does, decision 0017)

Per seed: CPU of the process and its threads (utime + stime from /proc/self/stat: the hub, the
doors and the organiser's app all live in it), wall time, steps. Prints one JSON line per
contender (median and p99 of the seeds' CPU and wall, seeds per CPU second) and the ratio; exits
1 if a seed's trace differs between the two (the driver must change no run).

Run: ``.venv/bin/python bench/sim_seeds.py [--seeds 21,22,23] [--small]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _wsbench import VERSIONS  # noqa: E402

from tests.simulation import run  # noqa: E402
from tests.simulation.run import Config, run_seed  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")
SMALL = {"doors": 5, "tickets": 80, "duration": 120.0}


def _cpu() -> float:
    """Seconds of CPU of this process, all its threads (utime + stime)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _one(config: Config, inline: bool) -> tuple[float, float, int, str]:
    run.INLINE_DRIVER = inline
    cpu, wall = _cpu(), time.perf_counter()
    sim = run_seed(config)
    return _cpu() - cpu, time.perf_counter() - wall, sim.steps, sim.digest.hexdigest()


def _p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="21,22,23")
    parser.add_argument("--small", action="store_true", help="5 doors, 80 tickets, 120 s")
    args = parser.parse_args()
    overrides = SMALL if args.small else {}
    seeds = [int(s) for s in args.seeds.split(",")]
    for inline in (False, True):
        _one(Config(seeds[0] + 1000, **overrides), inline)  # type: ignore[arg-type]
    results: dict[str, list[tuple[float, float, int, str]]] = {"thread": [], "inline": []}
    for seed in seeds:
        for name, inline in (("thread", False), ("inline", True)):
            results[name].append(_one(Config(seed, **overrides), inline))  # type: ignore[arg-type]
    same = [a[3] == b[3] for a, b in zip(results["thread"], results["inline"], strict=True)]
    lines = {}
    for name, rows in results.items():
        cpu = [r[0] for r in rows]
        wall = [r[1] for r in rows]
        lines[name] = {
            "contender": name,
            "seeds": seeds,
            "config": "small" if args.small else "default",
            "cpu_s_p50": round(statistics.median(cpu), 3),
            "cpu_s_p99": round(_p99(cpu), 3),
            "wall_s_p50": round(statistics.median(wall), 3),
            "wall_s_p99": round(_p99(wall), 3),
            "seeds_per_cpu_s": round(len(cpu) / sum(cpu), 4),
            "steps": [r[2] for r in rows],
            "load": round(os.getloadavg()[0], 1),
            **VERSIONS,
        }
        print(json.dumps(lines[name]), flush=True)
    ratio = lines["thread"]["cpu_s_p50"] / lines["inline"]["cpu_s_p50"]
    print(
        json.dumps({"ratio_cpu_p50_thread_over_inline": round(ratio, 2), "same_traces": all(same)})
    )
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.exit(main())
