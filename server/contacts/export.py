"""A contact list as rows of cells for the CSV and XLSX exports (server/exports/writers.py).

Columns: `email`, `name`, `language`, then one per attribute name found in the list (in order
of first appearance, contacts in address order). These are the import's own column names, so
an exported file imported again (into this list with `duplicates=update`, or into another)
gives the same contacts; for that reason no creation date is exported (an import would take it
for an attribute). Cells are text, guarded against formulas by the writers.

Both passes (names, then rows) read in the caller's session, which for a streamed answer is a
read transaction of its own: on SQLite (WAL) one snapshot for the whole file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.contacts.models import Contact
from server.contacts.store import stream_contacts
from server.exports.writers import Cell

__all__ = ["FIXED_COLUMNS", "attribute_names", "export_filename", "export_header", "export_rows"]

FIXED_COLUMNS = ("email", "name", "language")
_BATCH = 2_000


async def attribute_names(session: AsyncSession, list_id: str) -> list[str]:
    """Every attribute name the list's contacts carry, in order of first appearance."""
    names: dict[str, None] = {}
    result = await session.stream(
        select(Contact.attributes)
        .where(Contact.list_id == list_id)
        .order_by(Contact.email_key)
        .execution_options(yield_per=_BATCH)
    )
    async for (attributes,) in result:
        for name in attributes or ():
            names.setdefault(name, None)
    return list(names)


def export_header(names: list[str]) -> tuple[str, ...]:
    return (*FIXED_COLUMNS, *names)


async def export_rows(
    session: AsyncSession, list_id: str, names: list[str]
) -> AsyncIterator[tuple[Cell, ...]]:
    """One row per contact, in address order, its attributes under `names`."""
    async for batch in stream_contacts(session, list_id, batch_size=_BATCH):
        for contact in batch:
            attributes = contact.attributes
            yield (
                contact.email,
                contact.name,
                contact.language,
                *[attributes.get(name) for name in names],
            )


def export_filename(list_name: str, extension: str) -> str:
    """`<list name as ASCII letters, digits and dashes>.<extension>` (`contacts` if none)."""
    ascii_name = unicodedata.normalize("NFKD", list_name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    return f"{stem or 'contacts'}.{extension}"
