"""`python -m tests.simulation [SEED] [--seeds N] [--doors N] ...`: replay one seed or run many.

One seed: runs it, prints the result, and on failure the invariant, the replay command, the
trace of the last steps, and a shrunk configuration. `--seeds N` runs seeds FIRST..FIRST+N-1
with a progress line (seeds/s, failures so far).
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.simulation import mutations
from tests.simulation.run import Config, Failure, run_seed
from tests.simulation.shrink import shrink


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation")
    parser.add_argument("seed", nargs="?", type=int, default=None)
    parser.add_argument(
        "--seeds", type=int, default=0, help="run this many seeds from SEED (default 1)"
    )
    parser.add_argument("--doors", type=int, default=0)
    parser.add_argument("--tickets", type=int, default=0)
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument("--faults", default=None, help="comma-separated fault kinds, or none")
    parser.add_argument("--big", action="store_true", help="5-50 doors, 1,000-3,000 tickets")
    parser.add_argument("--mutation", default=None, help=f"one of {', '.join(mutations.NAMES)}")
    parser.add_argument("--no-shrink", action="store_true")
    args = parser.parse_args(argv)
    if args.mutation:
        mutations.enable(args.mutation)
    base = Config(seed=0)
    faults = base.faults
    if args.faults is not None:
        faults = frozenset() if args.faults == "none" else frozenset(args.faults.split(","))
    first = args.seed if args.seed is not None else 1
    count = args.seeds or 1
    failures = 0
    started = time.perf_counter()
    for n, seed in enumerate(range(first, first + count), 1):
        config = Config(seed, args.doors, args.tickets, args.duration, faults, args.big)
        try:
            sim = run_seed(config)
            if count == 1:
                resolved = config.resolved()
                print(
                    f"seed {seed}: ok ({resolved.doors} doors, {resolved.tickets} tickets, "
                    f"{len(sim.scanned)} scans, {sim.steps} steps, "
                    f"trace {sim.digest.hexdigest()[:12]})"
                )
        except Failure as failure:
            failures += 1
            report(config, failure, shrink_it=not args.no_shrink)
        if count > 1:
            rate = n / (time.perf_counter() - started)
            print(f"\r{n}/{count} seeds, {rate:.2f} seeds/s, {failures} failed", end="", flush=True)
    if count > 1:
        print()
    return 1 if failures else 0


def report(config: Config, failure: Failure, *, shrink_it: bool) -> None:
    print(f"\nseed {config.seed} FAILED: {failure.invariant}: {failure.detail}")
    print(f"replay: make sim SEED={config.seed}   or   {config.command()}")
    print("last steps:")
    for line in failure.trace[-30:]:
        print("  " + line)
    if shrink_it:
        smaller = shrink(config, failure.invariant)
        print(f"shrunk: {smaller.command()}")


if __name__ == "__main__":
    sys.exit(main())
