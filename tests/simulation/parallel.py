"""Many seeds over worker processes (`--jobs N`), each seed whole in one worker.

A seed's run depends on its configuration alone (every draw comes from its seed, the server's
`secrets` too: determinism.py), never on the process it runs in or on the seeds before it
there, so splitting seeds over processes changes no run: a worker's trace digest of a seed is
the one `python -m tests.simulation SEED` prints (test_simulation.py checks it).

Workers are forked once and run seed after seed (the app, the migrated template database and the
imports are made once per worker); a failing seed is shrunk in the worker that found it, so the
parent only prints. Each outcome is plain data (a `Failure` does not pickle).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.simulation import mutations, run
from tests.simulation.run import Config, Failure, run_seed
from tests.simulation.shrink import shrink

__all__ = ["Outcome", "default_jobs", "run_many", "run_one"]


@dataclass(frozen=True)
class Outcome:
    """What one seed came to: `invariant` is None when every invariant held."""

    config: Config
    digest: str = ""
    steps: int = 0
    scans: int = 0
    invariant: str | None = None
    detail: str = ""
    trace: tuple[str, ...] = ()
    shrunk: str | None = None  # the shrunk configuration's command, when asked for


def default_jobs() -> int:
    """One worker per CPU this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_one(config: Config, *, shrink_it: bool = False) -> Outcome:
    """Run `config` here and say how it went (shrunk if it failed and `shrink_it`)."""
    try:
        sim = run_seed(config)
    except Failure as failure:
        shrunk = shrink(config, failure.invariant).command() if shrink_it else None
        return Outcome(
            config,
            invariant=failure.invariant,
            detail=failure.detail,
            trace=tuple(failure.trace),
            shrunk=shrunk,
        )
    return Outcome(config, sim.digest.hexdigest(), sim.steps, len(sim.scanned))


def _start_worker(root: str, enabled: tuple[str, ...]) -> None:
    run.WORK_ROOT = Path(root)
    for name in enabled:
        mutations.enable(name)


def _job(args: tuple[Config, bool]) -> Outcome:
    config, shrink_it = args
    return run_one(config, shrink_it=shrink_it)


def run_many(configs: Iterable[Config], jobs: int, *, shrink_it: bool) -> Iterator[Outcome]:
    """Each configuration's outcome, in the order they finish; `jobs` workers (1: here)."""
    if jobs <= 1:
        for config in configs:
            yield run_one(config, shrink_it=shrink_it)
        return
    # The workers' run directories (and each worker's template database) live under one root
    # removed at the end: a pool's worker exits without running `atexit`.
    root = tempfile.mkdtemp(prefix="tessera-sim-jobs-", dir=run.work_base())
    enabled = tuple(n for n in mutations.NAMES if mutations.active(n))
    context = multiprocessing.get_context("fork")  # the imports once, in the parent
    try:
        with context.Pool(jobs, _start_worker, (root, enabled)) as pool:
            work = ((config, shrink_it) for config in configs)
            yield from pool.imap_unordered(_job, work, chunksize=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
