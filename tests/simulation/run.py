"""One seed, start to end: build, run the workload and faults, calm, check (`run_seed`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from tests.simulation.config import Config, Failure
from tests.simulation.determinism import seeded_secrets
from tests.simulation.inline_sqlite import inline_sqlite
from tests.simulation.invariants import check_end
from tests.simulation.sim import HEAL_INTERVAL, QUIESCE, Sim
from tests.simulation.workload import calm, schedule_workload

__all__ = ["INLINE_DRIVER", "WORK_ROOT", "Config", "Failure", "run_seed", "work_base"]


WORK_ROOT: Path | None = None  # where runs make their directories (parallel.py sets it)
INLINE_DRIVER = True  # False: aiosqlite with its own thread (bench/sim_seeds.py's baseline)


def work_base() -> Path | None:
    """tmpfs when there is one: a run is a few thousand commits, and fsync is not what is
    tested (a crash here kills the process, it does not cut the power)."""
    if WORK_ROOT is not None:
        return WORK_ROOT
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def run_seed(config: Config, *, keep: bool = False) -> Sim:
    """Run one seed to the end and check every invariant; raises Failure."""
    workdir = Path(tempfile.mkdtemp(prefix=f"tessera-sim-{config.seed}-", dir=work_base()))
    driver = inline_sqlite() if INLINE_DRIVER else contextlib.nullcontext()
    with seeded_secrets(config.seed), driver:
        return _run(config, workdir, keep=keep)


def _run(config: Config, workdir: Path, *, keep: bool) -> Sim:
    sim = Sim(config, workdir)
    try:
        schedule_workload(sim)
        sim.at(HEAL_INTERVAL, sim.heal_tick)
        sim.run_until(sim.config.duration)
        calm(sim)
        sim.run_until(sim.config.duration + QUIESCE)
        check_end(sim)
        return sim
    except Failure:
        raise
    except Exception as exc:  # the real code raised where it must answer: a failure like any
        raise sim.fail("no-exception", f"{type(exc).__name__}: {exc}") from exc
    finally:
        sim.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
