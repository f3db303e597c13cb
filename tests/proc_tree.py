"""What a process and its descendants use, read from /proc: for the tests and benches that report
a server's CPU per operation and its memory (a server's workers and threads included)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["process_tree", "tree_cpu_seconds", "tree_rss_bytes"]


def _stats() -> dict[int, list[str]]:
    """The fields of /proc/PID/stat after the command name, for every live process."""
    found: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            found[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
    return found


def _tree(pids: int | Iterable[int], stats: dict[int, list[str]]) -> set[int]:
    parents = {pid: int(fields[1]) for pid, fields in stats.items()}
    tree = {pids} if isinstance(pids, int) else set(pids)
    frontier = list(tree)
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    return tree


def process_tree(pids: int | Iterable[int]) -> set[int]:
    """`pids` and every live descendant of them."""
    return _tree(pids, _stats())


def tree_cpu_seconds(pids: int | Iterable[int]) -> float:
    """User + system CPU seconds of the live processes `pids` and their descendants, every
    thread (utime + stime of /proc/PID/stat); 0 for a process that is not there."""
    stats = _stats()
    tick = os.sysconf("SC_CLK_TCK")
    return sum(
        (int(stats[p][11]) + int(stats[p][12])) / tick for p in _tree(pids, stats) if p in stats
    )


def tree_rss_bytes(pids: int | Iterable[int]) -> int:
    """Resident memory (VmRSS) of `pids` and their live descendants."""
    total = 0
    for process in process_tree(pids):
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total
