"""Contact-list request and answer bodies (ARCHITECTURE §10), decoded strictly."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar

import msgspec

from server.imports.analyze import MAX_ATTRIBUTE_NAME, MAX_ATTRIBUTE_VALUE, check_email
from server.schemas import Id, Language, Name, Rule, apply_rules, check_distinct

__all__ = [
    "MAX_ATTRIBUTES",
    "Attributes",
    "ContactCreate",
    "ContactListCreate",
    "ContactListOut",
    "ContactListPatch",
    "ContactOut",
    "DuplicateIn",
    "MergeDuplicateOut",
    "MergeIn",
    "MergeOut",
    "MergeSourceOut",
    "check_attributes",
]

MAX_ATTRIBUTES = 20  # per contact, as an import takes at most 20 columns
MAX_MERGE_SOURCES = 50
# As an import takes them (server/imports/analyze.py): names without control characters, values
# without any but line breaks (a postal address). Checked by a rule rather than by the key and
# value types, so that the 422 names the attribute (msgspec says only `attributes[...]`).
_NAME_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_VALUE_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
Attributes = Annotated[
    dict[str, str],
    msgspec.Meta(
        max_length=MAX_ATTRIBUTES,
        description=f"at most {MAX_ATTRIBUTES}: names of 1 to {MAX_ATTRIBUTE_NAME} characters, "
        f"text values of at most {MAX_ATTRIBUTE_VALUE}",
    ),
]


def _attribute_problem(name: str, value: str) -> str | None:
    if not name or len(name) > MAX_ATTRIBUTE_NAME:
        return f"a name has 1 to {MAX_ATTRIBUTE_NAME} characters"
    if _NAME_CONTROLS.search(name):
        return "a name must not contain control characters"
    if len(value) > MAX_ATTRIBUTE_VALUE:
        return f"a value has at most {MAX_ATTRIBUTE_VALUE} characters"
    if _VALUE_CONTROLS.search(value):
        return "a value must not contain control characters but line breaks"
    return None


def check_attributes(attributes: dict[str, str]) -> None:
    """Raise ValueError naming every bad attribute (name cut at 100 characters)."""
    problems = [
        f"{name[:100]!r}: {problem}"
        for name, value in attributes.items()
        if (problem := _attribute_problem(name, value)) is not None
    ]
    if problems:
        raise ValueError("; ".join(problems))


EmailText = Annotated[str, msgspec.Meta(min_length=3, max_length=320)]


class _Body(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    def __post_init__(self) -> None:
        apply_rules(self)


class ContactListCreate(_Body):
    name: Name


class ContactListPatch(_Body):
    name: Name | msgspec.UnsetType = msgspec.UNSET


class DuplicateIn(_Body):
    name: Name | None = None  # the copy's name; "<name> (copy)" if none


class MergeIn(_Body):
    """Merge `sources` into the list named in the path; `preview` computes without writing."""

    sources: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=MAX_MERGE_SOURCES)]
    preview: bool

    rules: ClassVar[tuple[Rule, ...]] = (Rule("sources", check_distinct),)


def _check_contact_email(email: str) -> None:
    # The same check as an imported row's, so a list holds one kind of address however it came.
    if not check_email(email):
        raise ValueError(f"not an email address: {email!r}")


class ContactCreate(_Body):
    email: EmailText
    name: Name | None = None
    language: Language | None = None
    attributes: Attributes = msgspec.field(default_factory=dict)

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("email", _check_contact_email),
        Rule("attributes", check_attributes),
    )


class ContactListOut(msgspec.Struct, frozen=True):
    id: str
    name: str
    contacts: int
    archived_at: datetime | None  # set when merged into another list: read-only since
    merged_into_id: str | None
    created_at: datetime
    updated_at: datetime


class ContactOut(msgspec.Struct, frozen=True):
    id: str
    list_id: str
    email: str
    name: str | None
    language: str | None
    attributes: dict[str, str]
    created_at: datetime  # when it entered this list (a copy or a merge counts as entering)
    updated_at: datetime


class MergeSourceOut(msgspec.Struct, frozen=True):
    id: str
    name: str
    contacts: int


class MergeDuplicateOut(msgspec.Struct, frozen=True):
    """An address in two lists: the contact of `kept_from` stays, completed from the other."""

    email: str
    kept_from: str
    dropped_from: str


class MergeOut(msgspec.Struct, frozen=True):
    """What a merge does (preview) or did (committed); both are computed by the same code."""

    list_id: str
    committed: bool
    sources: list[MergeSourceOut]
    contacts_before: int
    added: int
    duplicates_total: int
    completed: int  # contacts of the list that gained a name, language or attributes
    contacts_after: int
    duplicates: list[MergeDuplicateOut]  # the first 1,000
