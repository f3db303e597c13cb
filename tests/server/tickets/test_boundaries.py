"""Issue 17's boundaries around tickets: tickets/ knows nothing of bookings/, the HTTP edge
knows the ticket issuer but not the tickets service, and the ticket's answer lives in tickets/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, absolute or relative, resolved to its dotted name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_no_module_of_tickets_imports_bookings():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith("server.bookings")
        )
        for path in (ROOT / "server" / "tickets").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_http_edge_does_not_import_the_tickets_service():
    imported = imported_modules(ROOT / "server" / "http.py")
    assert not {m for m in imported if m.startswith("server.tickets.service")}


def test_the_ticket_answer_is_defined_in_tickets():
    from server.bookings.schemas import BookingOut
    from server.tickets.schemas import TicketOut

    assert TicketOut.__module__ == "server.tickets.schemas"
    assert BookingOut.__annotations__["tickets"] in ("list[TicketOut]", list[TicketOut])
