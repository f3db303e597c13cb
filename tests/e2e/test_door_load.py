"""The load harness's own verdicts (tests/e2e/door_load.py): its checks can fail.

The fault tests trust `LoadReport.assert_exactly_once` to notice a lost or doubled scan, and
`tree_cpu_seconds` to read the server's CPU; each is shown here to see what it must.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.door_load import LoadReport, percentile, tree_cpu_seconds


def _report(**overrides: object) -> LoadReport:
    fields: dict[str, object] = {
        "doors": 2,
        "seconds": 1.0,
        "offered": 10,
        "recorded": 10,
        "lost": 0,
        "duplicated": 0,
        "unknown": 0,
        "refused": 0,
        "offered_in_run": 10,
        "door_decided": 0,
        "unrecorded": 0,
        "settled": True,
        "fanout": [(0.5, 0.02)],
        "fanout_all": [(0.5, 0.02)],
        "missing": 0,
        "gaps": [],
        "opens": [],
        "closed": 0,
        "started": 0.0,
        "harness_cpu": 0.0,
        "notices": {},
    }
    return LoadReport(**(fields | overrides))  # type: ignore[arg-type]


def test_a_clean_run_passes_the_exactly_once_check():
    _report().assert_exactly_once()


@pytest.mark.parametrize(
    "fault",
    [
        {"lost": 1, "recorded": 9},
        {"duplicated": 1},
        {"unknown": 1, "recorded": 11},
        {"refused": 1},
        {"missing": 1},
        {"unrecorded": 1},
        {"settled": False},
        {"offered": 0, "recorded": 0, "offered_in_run": 0},
    ],
    ids=lambda fault: ",".join(fault),
)
def test_the_exactly_once_check_fails_on_each_kind_of_fault(fault: dict[str, object]):
    with pytest.raises(AssertionError):
        _report(**fault).assert_exactly_once()


def test_fan_out_figures_keep_to_their_window():
    report = _report(fanout=[(1.0, 0.01), (5.0, 2.0)], started=0.0)
    assert report.fanout_between(0.0, 2.0) == [0.01]
    assert report.figures(4.0, 6.0)["fanout_p99_ms"] == 2000.0
    assert percentile([], 0.99) == 0.0


def test_tree_cpu_seconds_counts_a_busy_process_and_nothing_for_a_gone_one():
    before = tree_cpu_seconds([os.getpid()])
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    assert tree_cpu_seconds([os.getpid()]) >= before + 0.1
    assert tree_cpu_seconds([2**22 + 1]) == 0.0  # above any pid_max: no such process
