"""A run's configuration, derived from its seed, and the failure a broken invariant raises."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

__all__ = ["Config", "Failure"]


@dataclass(frozen=True)
class Config:
    """What a run is made of; every field follows from the seed unless given."""

    seed: int
    doors: int = 0  # 0: from the seed (5-12; `big` runs 5-50)
    tickets: int = 0
    duration: float = 0.0  # seconds of scanning
    faults: frozenset[str] = frozenset(
        {"drop", "partition", "group", "crash", "upload_crash", "hub_restart", "lose_notice",
         "duplicate", "organiser", "undo", "same_ms"}
    )  # fmt: skip
    big: bool = False

    def resolved(self) -> Config:
        rng = random.Random(self.seed * 7919 + 1)
        doors = self.doors or rng.randint(5, 50 if self.big else 12)
        tickets = self.tickets or (rng.randint(1000, 3000) if self.big else rng.randint(150, 400))
        duration = self.duration or rng.uniform(120, 400)
        return dataclasses.replace(self, doors=doors, tickets=tickets, duration=duration)

    def command(self) -> str:
        extra = ""
        if self.doors or self.tickets or self.duration:
            extra = f" --doors {self.doors} --tickets {self.tickets} --duration {self.duration!r}"
        if self.faults != Config(0).faults:
            extra += f" --faults {','.join(sorted(self.faults)) or 'none'}"
        return f".venv/bin/python -m tests.simulation {self.seed}{extra}"


class Failure(AssertionError):
    """An invariant broken; carries the trace of the last steps."""

    def __init__(self, invariant: str, detail: str, trace: list[str]) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail
        self.trace = trace
