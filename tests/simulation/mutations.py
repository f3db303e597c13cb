"""Deliberate bugs the simulation must catch (issue 18 item 7), switched on by name.

`TESSERA_SIM_MUTATION=<name>` in the environment, or `mutations.enable(name)` in a test:
  dedupe     the hub records a repeated `(device, scan_id)` again instead of answering the stored
             result (a batch re-uploaded after a lost answer is counted twice);
  skip_seq   the hub's live push leaves out one change when it sends two or more (the door's
             cursor still advances past it because the hub says the page is complete: a door
             that trusted `head` would diverge; ours checks `seq`, so this one shows whether
             the door's gap check is exercised);
  lose_journal  a door restarting after a crash loses the scans it journaled but did not upload.
"""

from __future__ import annotations

import os

__all__ = ["NAMES", "active", "disable", "enable"]

NAMES = ("dedupe", "skip_seq", "lose_journal")
_enabled: set[str] = {n for n in os.environ.get("TESSERA_SIM_MUTATION", "").split(",") if n}


def active(name: str) -> bool:
    return name in _enabled


def enable(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"no mutation {name!r}; known: {', '.join(NAMES)}")
    _enabled.add(name)


def disable(name: str) -> None:
    _enabled.discard(name)
