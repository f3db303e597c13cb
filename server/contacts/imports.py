"""Importing a file or pasted lines into a contact list: analyse, then commit all or nothing.

Rules (docs/import.md, the shared design of issue 15):
- A list holds each address once (`email_key`). A duplicate is a row whose address is in the
  list already, or on an earlier line of the file. `skip` (the default) keeps what is there (or
  the first line), so importing a file again adds nothing; `update` overwrites the contact's
  name and language where the row gives them and merges its attributes (the row's values win,
  later rows over earlier ones; existing attributes are kept first within the 20 allowed);
  `keep` is refused (422): a list cannot hold an address twice.
- A quantity column means nothing to a list and is ignored.
- `analyze` writes nothing. `commit` analyses again in the caller's transaction, with the list
  locked, and applies every decision or none: a `digest` that is not this analysis's -> 409
  `analysis_mismatch`; an invalid row with `on_error=reject_all` -> 422 `import_invalid`. Both
  carry the report. An archived list refuses both modes (409 `list_archived`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.contacts.models import Contact, ContactList
from server.contacts.schemas import MAX_ATTRIBUTES
from server.contacts.service import writable_list
from server.contacts.store import (
    ContactRow,
    insert_contacts,
    read_contacts,
    recount,
    update_contacts,
)
from server.errors import BodyInvalid, Conflict, FieldError
from server.imports.analyze import (
    Analysis,
    Decision,
    Entry,
    OnError,
    analyze_source,
    classify_duplicates,
    email_key,
)
from server.imports.schemas import ImportReport, build_report

__all__ = [
    "ContactAnalysisMismatch",
    "ContactImport",
    "ContactImportInvalid",
    "ContactImportOptions",
    "ContactImportReport",
    "analyze_contacts",
    "commit_contacts",
]

ListDuplicates = Literal["skip", "update"]
Mode = Literal["analyze", "commit"]
_ERRORS_LISTED = 20


@dataclass(frozen=True)
class ContactImportOptions:
    """What the organiser chose; every field shapes the result, so all enter the digest."""

    duplicates: ListDuplicates = "skip"
    on_error: OnError = "reject_all"

    def digest_part(self, list_id: str) -> str:
        return f"contact_list={list_id};duplicates={self.duplicates};on_error={self.on_error}"

    def as_dict(self) -> dict[str, str]:
        return {"duplicates": self.duplicates, "on_error": self.on_error}


class ContactImportReport(ImportReport, kw_only=True):
    list_id: str
    contacts_before: int
    contacts_after: int  # after the commit, or as the analysis foresees it


@dataclass
class ContactImport:
    """An analysis of an import into a list, and whether it was committed."""

    contact_list: ContactList
    options: ContactImportOptions
    analysis: Analysis
    decisions: list[Decision]
    contacts_before: int
    committed: bool = False

    def creates(self) -> int:
        return sum(1 for d in self.decisions if d.action == "create")

    def report(self, mode: Mode) -> ContactImportReport:
        return build_report(
            self.analysis,
            self.decisions,
            mode=mode,
            options=self.options.as_dict(),
            committed=self.committed,
            report_type=ContactImportReport,
            list_id=self.contact_list.id,
            contacts_before=self.contacts_before,
            contacts_after=self.contacts_before + self.creates(),
        )


class ContactAnalysisMismatch(Conflict):
    """409: the file or the options are not those of the analysis the client names."""

    code = "analysis_mismatch"
    title = "Not the analysed import"


class ContactImportInvalid(BodyInvalid):
    """422: rows are invalid and `on_error=reject_all`; `errors` names the first of them."""

    code = "import_invalid"
    title = "Import has invalid rows"


async def analyze_contacts(
    session: AsyncSession,
    list_id: str,
    data: bytes,
    *,
    filename: str | None,
    content_type: str | None,
    options: ContactImportOptions,
) -> ContactImport:
    """What importing `data` into the list would do; writes nothing, but locks the list (the
    commit analyses under the lock it then writes under).

    Raises NotFound, ListArchived, or SourceError (the file cannot be read at all).
    """
    contact_list = await writable_list(session, list_id)
    analysis = analyze_source(
        data,
        filename=filename,
        content_type=content_type,
        options_digest_part=options.digest_part(list_id),
    )
    keys = set(await session.scalars(select(Contact.email_key).where(Contact.list_id == list_id)))
    decisions = classify_duplicates(
        analysis.entries, keys, options.duplicates, within_file_are_duplicates=True
    )
    return ContactImport(contact_list, options, analysis, decisions, len(keys))


async def commit_contacts(
    session: AsyncSession,
    list_id: str,
    data: bytes,
    *,
    filename: str | None,
    content_type: str | None,
    options: ContactImportOptions,
    digest: str | None,
    now: datetime,
) -> ContactImport:
    """Analyse again and apply, all or nothing, in the caller's transaction (see the rules)."""
    result = await analyze_contacts(
        session, list_id, data, filename=filename, content_type=content_type, options=options
    )
    _refuse(result, digest)
    created, updated = await _apply(session, list_id, result.decisions, now)
    await insert_contacts(session, list_id, created, now)
    await update_contacts(session, updated, now)
    await recount(session, result.contact_list, now)
    result.committed = True
    return result


def _refuse(result: ContactImport, digest: str | None) -> None:
    report = msgspec.to_builtins(result.report("commit"))
    if digest is not None and digest != result.analysis.digest:
        raise ContactAnalysisMismatch(
            "the file or the options differ from the analysis: analyse again",
            expected=digest,
            digest=result.analysis.digest,
            report=report,
        )
    problems = result.analysis.problems
    if problems and result.options.on_error == "reject_all":
        errors = [
            FieldError(f"line {p.line}" + (f", column {p.column}" if p.column else ""), p.reason)
            for p in problems[:_ERRORS_LISTED]
        ]
        refusal = ContactImportInvalid(errors)
        refusal.detail = (
            f"{result.analysis.invalid_rows or len(problems)} invalid row(s) and "
            "on_error=reject_all: nothing was imported"
        )
        refusal.extra = {"report": report}
        raise refusal


async def _apply(
    session: AsyncSession, list_id: str, decisions: list[Decision], now: datetime
) -> tuple[list[ContactRow], list[ContactRow]]:
    """The contacts to insert and the stored ones to rewrite, in file order."""
    created: dict[str, ContactRow] = {}
    stored: dict[str, ContactRow] = {}
    if any(d.action == "update" and d.duplicate_of == "existing" for d in decisions):
        stored = {row.email_key: row for row in await read_contacts(session, list_id)}
    changed: dict[str, ContactRow] = {}
    for decision in decisions:
        entry = decision.entry
        if decision.action == "create":
            key = email_key(entry.email)
            created[key] = ContactRow(
                entry.email, key, entry.name, entry.language, dict(entry.attributes)
            )
        elif decision.action == "update":
            key = email_key(entry.email)
            target = created.get(key) if decision.duplicate_of != "existing" else stored[key]
            assert target is not None  # a within-file duplicate follows its created first line
            _update(target, entry)
            if decision.duplicate_of == "existing":
                changed[key] = target
    return list(created.values()), list(changed.values())


def _update(contact: ContactRow, entry: Entry) -> None:
    """Overwrite name and language where the row gives them; merge the row's attributes."""
    if entry.name is not None:
        contact.name = entry.name
    if entry.language is not None:
        contact.language = entry.language
    for name, value in entry.attributes.items():
        if name in contact.attributes or len(contact.attributes) < MAX_ATTRIBUTES:
            contact.attributes[name] = value
