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
from tests.simulation.parallel import Outcome, default_jobs, run_many
from tests.simulation.run import Config


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
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="worker processes for --seeds (default: one per CPU; 1 runs here)",
    )
    args = parser.parse_args(argv)
    if args.mutation:
        if args.mutation not in mutations.NAMES:
            parser.error(f"no mutation {args.mutation!r}; known: {', '.join(mutations.NAMES)}")
        mutations.enable(args.mutation)
    if args.seeds < 0 or args.jobs < 0:
        parser.error("--seeds and --jobs take a count, 0 or more")
    base = Config(seed=0)
    faults = base.faults
    if args.faults is not None:
        faults = frozenset() if args.faults == "none" else frozenset(args.faults.split(","))
        unknown = faults - base.faults
        if unknown:
            parser.error(
                f"unknown fault kinds {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(base.faults))}"
            )
    first = args.seed if args.seed is not None else 1
    count = args.seeds or 1
    jobs = min(args.jobs or default_jobs(), count)
    configs = (
        Config(seed, args.doors, args.tickets, args.duration, faults, args.big)
        for seed in range(first, first + count)
    )
    failures = 0
    started = time.perf_counter()
    for n, outcome in enumerate(run_many(configs, jobs, shrink_it=not args.no_shrink), 1):
        if outcome.invariant is not None:
            failures += 1
            report(outcome)
        elif count == 1:
            resolved = outcome.config.resolved()
            print(
                f"seed {outcome.config.seed}: ok ({resolved.doors} doors, "
                f"{resolved.tickets} tickets, {outcome.scans} scans, {outcome.steps} steps, "
                f"trace {outcome.digest[:12]})"
            )
        if count > 1:
            rate = n / (time.perf_counter() - started)
            print(
                f"\r{n}/{count} seeds, {rate:.2f} seeds/s ({jobs} jobs), {failures} failed",
                end="",
                flush=True,
            )
    if count > 1:
        print()
    return 1 if failures else 0


def report(outcome: Outcome) -> None:
    config = outcome.config
    print(f"\nseed {config.seed} FAILED: {outcome.invariant}: {outcome.detail}")
    print(f"replay: make sim SEED={config.seed}   or   {config.command()}")
    print("last steps:")
    for line in outcome.trace[-30:]:
        print("  " + line)
    if outcome.shrunk is not None:
        print(f"shrunk: {outcome.shrunk}")


if __name__ == "__main__":
    sys.exit(main())
