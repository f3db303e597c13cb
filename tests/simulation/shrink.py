"""A simple shrinker: fewer doors, a shorter run, fewer fault kinds, while the same invariant
still breaks. Greedy, each try one whole run of the same seed: good enough to turn a 40-door,
300-second failure into a handful of doors and the one or two faults that matter."""

from __future__ import annotations

import dataclasses

from tests.simulation.run import Config, Failure, run_seed

__all__ = ["fails", "shrink"]


def fails(config: Config, invariant: str) -> bool:
    try:
        run_seed(config)
    except Failure as failure:
        return failure.invariant == invariant
    return False


def shrink(config: Config, invariant: str, budget: int = 30) -> Config:
    """The smallest configuration found (within `budget` runs) that breaks `invariant`."""
    best = config.resolved()
    tries = 0

    def attempt(candidate: Config) -> bool:
        nonlocal best, tries
        tries += 1
        if tries > budget or not fails(candidate, invariant):
            return False
        best = candidate
        return True

    while best.doors > 2 and attempt(dataclasses.replace(best, doors=max(2, best.doors // 2))):
        pass
    while best.duration > 20 and attempt(dataclasses.replace(best, duration=best.duration / 2)):
        pass
    for kind in sorted(best.faults):
        attempt(dataclasses.replace(best, faults=best.faults - {kind}))
    while best.tickets > 20 and attempt(dataclasses.replace(best, tickets=best.tickets // 2)):
        pass
    return best
