"""The door simulation under pytest: a bounded number of seeds, the regression seeds, replay, and
proof that the simulator can fail (docs/simulation.md).

`TESSERA_SIM_SEEDS=N` widens the bounded run (default 6 seeds of 5-12 doors, about a minute on
the 2-core machine when it is quiet); `make sim` is the long run.
"""

from __future__ import annotations

import itertools
import os

import pytest

from tests.simulation import mutations
from tests.simulation.__main__ import main
from tests.simulation.parallel import run_many
from tests.simulation.run import Config, Failure, run_seed
from tests.simulation.shrink import shrink
from tests.simulation.sim import COUNTERS_INTERVAL, HEAL_INTERVAL

BOUNDED = int(os.environ.get("TESSERA_SIM_SEEDS", "6"))
SMALL = {"doors": 5, "tickets": 80, "duration": 120.0}  # a few seconds a seed

# Seeds that once broke an invariant, kept for ever (seed, config overrides, why).
REGRESSIONS: list[tuple[int, dict[str, object], str]] = [
    (18, {}, "a re-entry scan 0.03 s before the end was judged unsent: doors close in the calm"),
    (1, {}, "a ticketless forced scan reached only the doors connected at its upload (0012)"),
    (122, {}, "the same: a reissued ticket's old code admitted offline, door3 partitioned"),
]

# Real bugs found and not fixed yet (their fix is in server/checkin): each seed must still break
# its invariant, so that the fix makes this test XPASS and someone moves the seed above.
KNOWN_BUGS: list[tuple[int, dict[str, object], str, str]] = []


_KNOWN = {seed for seed, overrides, _, _ in KNOWN_BUGS if not overrides}


@pytest.mark.parametrize(
    "seed", [s for s in range(1, BOUNDED + 1 + len(_KNOWN)) if s not in _KNOWN][:BOUNDED]
)
def test_seed_keeps_every_invariant(seed: int) -> None:
    _run_or_report(Config(seed))


@pytest.mark.parametrize(
    ("seed", "overrides"), [pytest.param(s, o, id=f"seed{s}") for s, o, _ in REGRESSIONS]
)
def test_regression_seed(seed: int, overrides: dict[str, object]) -> None:
    _run_or_report(Config(seed, **overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seed", "overrides", "invariant"),
    [
        pytest.param(
            s, o, i, id=f"seed{s}", marks=pytest.mark.xfail(strict=True, reason=why, raises=Failure)
        )
        for s, o, i, why in KNOWN_BUGS
    ],
)
def test_known_bug_seed(seed: int, overrides: dict[str, object], invariant: str) -> None:
    """Expected to fail with `invariant` (a Failure); any other invariant is a real failure."""
    try:
        run_seed(Config(seed, **overrides))  # type: ignore[arg-type]
    except Failure as failure:
        if failure.invariant != invariant:
            pytest.fail(f"another invariant broke: {failure}")
        raise


def test_a_seed_replays_step_for_step() -> None:
    """The whole trace of a seed (every delivery, fault and verdict) is the same on a replay:
    what `make sim SEED=...` prints is what happened."""
    first = run_seed(Config(11, **SMALL))  # type: ignore[arg-type]
    again = run_seed(Config(11, **SMALL))  # type: ignore[arg-type]
    assert first.steps == again.steps
    assert first.digest.hexdigest() == again.digest.hexdigest()
    other = run_seed(Config(12, **SMALL))  # type: ignore[arg-type]
    assert other.digest.hexdigest() != first.digest.hexdigest()


def test_the_simulated_room_keeps_the_rooms_timers() -> None:
    """As server/checkin/room.py: counters at most once per `counters_interval` within one hub
    process, and a heal only after `heal_interval` without a notice or a heal."""
    sim = run_seed(Config(13, **SMALL))  # type: ignore[arg-type]
    assert {"notice", "heal", "counters"} <= {kind for _, kind, _ in sim.room_reads}
    pushes = [(t, life) for t, kind, life in sim.room_reads if kind == "counters"]
    for (before, life), (after, same) in itertools.pairwise(pushes):
        assert life != same or after - before >= COUNTERS_INTERVAL - 1e-9, (before, after)
    reads = [(t, kind) for t, kind, _ in sim.room_reads if kind != "counters"]
    for (before, _), (after, kind) in itertools.pairwise(reads):
        assert kind != "heal" or after - before >= HEAL_INTERVAL - 1e-9, (before, after)


def test_notices_stand_for_a_read_when_their_items_join_and_not_otherwise() -> None:
    """The room's `offer_carried`: a notice of the hub's own commit offers its items; a burst
    after a lost notice does not join, and the log is read (both happen in one run)."""
    sim = run_seed(Config(13, **SMALL))  # type: ignore[arg-type]
    notices = sum(1 for _, kind, _ in sim.room_reads if kind == "notice")
    assert 0 < sim.hub.carried < notices


def test_worker_processes_run_each_seed_as_one_process_does() -> None:
    """`--jobs`: a seed run in a worker has the trace it has here (nothing a worker ran before
    leaks into the next seed), whatever order the seeds finish in."""
    configs = [Config(s, **SMALL) for s in (11, 12)]  # type: ignore[arg-type]
    here = run_seed(configs[1]).digest.hexdigest()
    there = {o.config.seed: o for o in run_many(configs, 2, shrink_it=False)}
    assert sorted(there) == [11, 12]
    assert all(o.invariant is None and o.steps for o in there.values())
    assert there[12].digest == here


def test_worker_processes_report_a_failing_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """A seed failing in a worker is reported as one run here reports it: the invariant, the
    replay command and the last steps; the exit status says it failed."""
    tiny = ["--doors", "3", "--tickets", "40", "--duration", "40", "--no-shrink"]
    try:
        status = main(["1", "--seeds", "2", "--jobs", "2", "--mutation", "dedupe", *tiny])
    finally:
        mutations.disable("dedupe")  # enabled here by main, before the workers were forked
    out = capsys.readouterr().out
    assert status == 1
    assert "seed 1 FAILED: none-invented: " in out
    assert "replay: make sim SEED=1   or   .venv/bin/python -m tests.simulation 1 --doors 3" in out
    assert "last steps:\n  t=" in out
    assert "2/2 seeds" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--mutation", "nope"],
        ["--faults", "drop,earthquake"],
        ["--seeds", "-3"],
        ["--jobs", "-1"],
        ["--seeds", "many"],
    ],
)
def test_bad_arguments_are_refused_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["1", *argv])
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mutation", "invariant"),
    [
        pytest.param("dedupe", "none-invented", id="hub-records-a-repeat-again"),
        pytest.param("lose_journal", "journal-keeps-every-scan", id="door-loses-its-queue"),
    ],
)
def test_a_deliberate_bug_is_caught(mutation: str, invariant: str) -> None:
    """Each deliberate bug of tests/simulation/mutations.py breaks its invariant within a few
    seeds (measured: the first seed, every time, for both); 20 is the bound asserted."""
    mutations.enable(mutation)
    try:
        for seed in range(1, 21):
            try:
                run_seed(Config(seed, **SMALL))  # type: ignore[arg-type]
            except Failure as failure:
                assert failure.invariant == invariant, failure
                assert failure.trace, "a failure carries the trace of its last steps"
                return
        pytest.fail(f"mutation {mutation} survived 20 seeds")
    finally:
        mutations.disable(mutation)


def test_the_shrinker_keeps_the_failure_with_fewer_doors() -> None:
    mutations.enable("dedupe")
    try:
        smaller = shrink(Config(1, **SMALL), "none-invented", budget=2)  # type: ignore[arg-type]
    finally:
        mutations.disable("dedupe")
    assert smaller.doors < SMALL["doors"]
    assert smaller.command().startswith(".venv/bin/python -m tests.simulation 1 --doors ")


def test_a_hub_skipping_a_seq_is_healed_by_the_doors() -> None:
    """The hub's live push leaving a change out is a gap the door sees (`seq` is not the next):
    it asks again from its cursor, and the run still converges."""
    mutations.enable("skip_seq")
    try:
        for seed in (1, 2):
            _run_or_report(Config(seed, **SMALL))  # type: ignore[arg-type]
    finally:
        mutations.disable("skip_seq")


def _run_or_report(config: Config) -> None:
    try:
        run_seed(config)
    except Failure as failure:
        trace = "\n  ".join(failure.trace[-30:])
        pytest.fail(
            f"seed {config.seed}: {failure}\nreplay: make sim SEED={config.seed}  "
            f"({config.command()})\nlast steps:\n  {trace}",
            pytrace=False,
        )
