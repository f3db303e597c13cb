"""What happens during a run: guests at the doors, faults, the organiser; then calm.

Every choice comes from the run's one generator (`sim.rng`), in the order this module draws,
so a seed replays exactly.
"""

from __future__ import annotations

from typing import Any

from protocol.rules import Direction
from tests.simulation.sim import Door, Sim
from tests.simulation.venue import organiser

__all__ = ["calm", "schedule_workload"]

DOORS_CLOSE = 30.0  # seconds into the calm after which nobody scans any more
_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ0123456789"  # Crockford base32, as the codes are


def schedule_workload(sim: Sim) -> None:
    rng, end = sim.rng, sim.config.duration
    for ticket in sim.venue.tickets:
        if rng.random() < 0.7:
            _guest(sim, ticket, rng.uniform(3, end * 0.9))
    for _ in range(int(end / 25)):
        code = rng.choice([_foreign_code(rng), "eyJhbGciOi.bad.token", "TICKET-NOPE"])
        sim.labels.setdefault(code, f"foreign:{code[:14]}")
        sim.at(rng.uniform(3, end), lambda c=code: scan(sim, _entry_door(sim), c))
    faults = sim.config.faults
    plan: list[tuple[str, float]] = []
    counts = {
        "drop": end / 15, "partition": end / 60, "group": end / 150, "crash": end / 60,
        "hub_restart": rng.choice([0, 1, 1, 2]), "organiser": end / 20, "undo": end / 40,
    }  # fmt: skip
    for kind, count in counts.items():
        if kind in faults:
            plan += [(kind, rng.uniform(0, end)) for _ in range(int(count + rng.random()))]
    for kind, when in plan:
        sim.at(when, lambda k=kind: _fault(sim, k))


def _guest(sim: Sim, ticket: dict[str, Any], arrival: float) -> None:
    """One ticket holder: a code in hand (token, readable or mistyped), perhaps twice, perhaps out
    and in again, perhaps at several doors in the same millisecond."""
    rng = sim.rng
    roll = rng.random()
    code = ticket["token"] if roll < 0.75 else ticket["code"]
    if roll >= 0.95:
        code = _typo(rng, ticket["code"])
        sim.labels[code] = f"typo:{ticket['id']}"
    door = _entry_door(sim)
    if "same_ms" in sim.config.faults and rng.random() < 0.03:
        for other in rng.sample(sim.doors, min(3, len(sim.doors))):
            sim.at(arrival, lambda d=other: scan(sim, d, code))
        return
    sim.at(arrival, lambda: scan(sim, door, code))
    if rng.random() < 0.1:  # scans again: held in front of the reader, or at another door later
        again = arrival + (rng.uniform(0.1, 1.0) if rng.random() < 0.5 else rng.uniform(5, 90))
        other = door if again - arrival < 1 else _entry_door(sim)
        sim.at(again, lambda: scan(sim, other, code))
    exits = [d for d in sim.doors if d.direction is Direction.EXIT]
    if exits and rng.random() < 0.2:
        out_door = rng.choice(exits)
        back = [d for d in sim.doors if d.list_id == out_door.list_id and d is not out_door]
        leave = arrival + rng.uniform(10, 120)
        sim.at(leave, lambda: scan(sim, out_door, code))
        if back and rng.random() < 0.7:
            sim.at(leave + rng.uniform(10, 120), lambda: scan(sim, rng.choice(back), code))


def _entry_door(sim: Sim) -> Door:
    entries = [d for d in sim.doors if d.direction is Direction.ENTRY]
    return sim.rng.choice(entries or sim.doors)


def _typo(rng: Any, code: str) -> str:
    """One character mistyped (never into itself, so the same seed mistypes the same way
    whatever code the hub drew)."""
    i = rng.randrange(len(code))
    wrong = rng.choice([c for c in _ALPHABET if c != code[i].upper()])
    return code[:i] + wrong + code[i + 1 :]


def _foreign_code(rng: Any) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(12))


def scan(sim: Sim, door: Door, code: str, tries: int = 3) -> None:
    """A guest's code read at `door`; a door that is down makes the guest try again later.
    Doors close 30 s into the calm: the rest of it is for the network to settle."""
    if sim.t > sim.config.duration + DOORS_CLOSE:
        return
    if door.core is None:
        if tries:
            sim.at(sim.t + sim.rng.uniform(2, 10), lambda: scan(sim, door, code, tries - 1))
        return
    scan_id = door.core.scan(code, door.clock(sim.t))
    if scan_id is not None:
        door.scan_ids.add(scan_id)
        sim.scanned.append((door.index, scan_id))
    sim.log(f"door{door.index} scan {_label(sim, code)} -> {scan_id}")
    sim.after_core(door)


def _label(sim: Sim, code: str) -> str:
    """A code as the trace names it: the ticket's index and how it was shown (the hub draws the
    readable codes in SQL, so the codes themselves differ between replays of a seed)."""
    if "" not in sim.labels:
        sim.labels[""] = ""
        for n, ticket in enumerate(sim.venue.tickets):
            sim.labels[ticket["token"]] = f"ticket{n}/qr"
            sim.labels[ticket["code"]] = f"ticket{n}/code"
    return sim.labels.get(code, f"other:{code[:14]}")


def _fault(sim: Sim, kind: str) -> None:
    if not sim.faulting:
        return
    rng = sim.rng
    if kind == "drop":
        up = [d for d in sim.doors if d.socket is not None]
        if up:
            sim.disconnect(rng.choice(up), "dropped")
    elif kind in ("partition", "group"):
        size = 1 if kind == "partition" else rng.randint(2, max(2, len(sim.doors) // 2))
        group = rng.sample(sim.doors, min(size, len(sim.doors)))
        sim.log(f"PARTITION doors {[d.index for d in group]}")
        for door in group:
            door.partitioned = True
            sim.disconnect(door, "partition")
        sim.at(sim.t + rng.uniform(5, 90), lambda: _heal(sim, group))
    elif kind == "crash":
        sim.crash(rng.choice(sim.doors))
    elif kind == "hub_restart":
        _hub_restart(sim)
    elif kind == "organiser":
        _organiser(sim)
    elif kind == "undo":
        door = rng.choice(sim.doors)
        if door.core is not None:
            sim.log(f"door{door.index} undo last")
            door.core.undo_last(door.clock(sim.t))
            sim.after_core(door)


def _heal(sim: Sim, group: list[Door]) -> None:
    sim.log(f"HEAL doors {[d.index for d in group]}")
    for door in group:
        door.partitioned = False


def _hub_restart(sim: Sim) -> None:
    if not sim.hub_up:
        return
    sim.log("HUB RESTART")
    sim.hub_up = False
    sim.hub_life += 1
    for door in sim.doors:
        sim.disconnect(door, "hub restart")
    sim.hub.restart()

    def back() -> None:
        sim.hub_up = True
        sim.log("hub up")

    sim.at(sim.t + sim.rng.uniform(1, 10), back)


def _organiser(sim: Sim) -> None:
    rng, venue = sim.rng, sim.venue
    action = rng.choice(["block", "block", "unblock", "reissue", "annul", "annul", "revoke"])
    if action == "revoke":
        if rng.random() < 0.5:
            return  # a whole booking of 50: rarer than the rest
        target = rng.choice(venue.bookings)
    elif action == "annul":
        if not sim.scanned:
            return
        index, scan_id = rng.choice(sim.scanned)
        target = f"{scan_id}@{sim.doors[index].device_id}"
    else:
        target = rng.choice(venue.tickets)["id"]
    status = sim.run(organiser(venue.client, action, target))
    sim.log(f"ORGANISER {action} {target} -> {status}")
    if status >= 500:
        raise sim.fail("no-5xx", f"organiser {action} {target} answered {status}")
    # The API is another instance: its notice reaches the hub's room through the fan-out.
    sim.notify(venue.event_id, {"kind": "head"})


def calm(sim: Sim) -> None:
    """Stop the faults, heal every partition, restart what is down: the run must converge."""
    sim.faulting = False
    sim.log("CALM: faults off, partitions healed, everyone restarted")
    for door in sim.doors:
        door.partitioned = False
    if not sim.hub_up:
        sim.hub_up = True
    for door in sim.doors:
        if door.core is None:
            sim.start_door(door)
        else:
            life = door.life
            sim.at(sim.t + sim.rng.uniform(0, 2), lambda d=door, lf=life: sim.try_connect(d, lf))
