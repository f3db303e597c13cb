"""A list's contacts: added one by one, listed in address order, searched, removed; one contact
per address per list, and bad contacts refused field by field."""

from __future__ import annotations

import pytest

from tests.conftest import problem_of
from tests.server.contacts.helpers import BASE, add_contact, contacts_of, create_list

MIB = 1024 * 1024


async def test_a_contact_is_added_with_location_read_and_counted(api):
    made = await create_list(api)
    response = await api.post(
        f"{BASE}/{made['id']}/contacts",
        json={
            "email": "Ada@Example.org",
            "name": "Ada Lovelace",
            "language": "en",
            "attributes": {"company": "Analytical Engines", "table": "7"},
        },
    )
    assert response.status_code == 201, response.text
    contact = response.json()
    location = f"https://tickets.test{BASE}/{made['id']}/contacts/{contact['id']}"
    assert response.headers["location"] == location
    assert contact["email"] == "Ada@Example.org"  # kept as typed
    assert contact["attributes"] == {"company": "Analytical Engines", "table": "7"}
    assert (await api.get(location)).json() == contact
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 1


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("ada@example.org", "ADA@EXAMPLE.ORG"),
        ("ada@bücher.example", "ada@xn--bcher-kva.example"),
        ("ada@EXAMPLE.org", "Ada@example.ORG"),
    ],
)
async def test_an_address_is_in_a_list_once_whatever_its_case_or_domain_form(api, first, again):
    made = await create_list(api)
    existing = await add_contact(api, made["id"], first)
    response = await api.post(f"{BASE}/{made['id']}/contacts", json={"email": again})
    assert response.status_code == 409
    assert problem_of(response)["id"] == existing["id"]
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 1


async def test_one_address_may_be_in_two_lists(api):
    first, second = await create_list(api, "A"), await create_list(api, "B")
    await add_contact(api, first["id"], "ada@example.org")
    await add_contact(api, second["id"], "ada@example.org")


async def test_contacts_are_listed_in_address_order_and_paged(api):
    made = await create_list(api)
    for email in ["carol@example.org", "Alice@example.org", "bob@example.org"]:
        await add_contact(api, made["id"], email)
    answer = (await api.get(f"{BASE}/{made['id']}/contacts", params={"limit": 2})).json()
    assert answer["total"] == 3
    assert [c["email"] for c in answer["items"]] == ["Alice@example.org", "bob@example.org"]
    rest = await api.get(f"{BASE}/{made['id']}/contacts", params={"limit": 2, "offset": 2})
    assert [c["email"] for c in rest.json()["items"]] == ["carol@example.org"]


async def test_search_finds_part_of_an_address_or_a_name_and_wildcards_are_literal(api):
    made = await create_list(api)
    await add_contact(api, made["id"], "ada@example.org", name="Ada Lovelace")
    await add_contact(api, made["id"], "grace@navy.example", name="Grace Hopper")
    await add_contact(api, made["id"], "under_score@example.org")

    async def found(q):
        answer = await api.get(f"{BASE}/{made['id']}/contacts", params={"q": q})
        return sorted(c["email"] for c in answer.json()["items"])

    assert await found("NAVY") == ["grace@navy.example"]
    assert await found("lovelace") == ["ada@example.org"]
    assert await found("_") == ["under_score@example.org"]
    assert await found("%") == []
    assert await found("   ") == sorted(
        ["ada@example.org", "grace@navy.example", "under_score@example.org"]
    )
    response = await api.get(f"{BASE}/{made['id']}/contacts", params={"q": "x" * 201})
    assert response.status_code == 400


async def test_removing_a_contact_recounts_the_list(api):
    made = await create_list(api)
    ada = await add_contact(api, made["id"], "ada@example.org")
    await add_contact(api, made["id"], "bob@example.org")
    response = await api.delete(f"{BASE}/{made['id']}/contacts/{ada['id']}")
    assert response.status_code == 204
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 1
    assert [c["email"] for c in await contacts_of(api, made["id"])] == ["bob@example.org"]
    again = await api.delete(f"{BASE}/{made['id']}/contacts/{ada['id']}")
    assert again.status_code == 404


async def test_a_contact_is_found_only_in_its_own_list(api):
    first, second = await create_list(api, "A"), await create_list(api, "B")
    ada = await add_contact(api, first["id"], "ada@example.org")
    assert (await api.get(f"{BASE}/{second['id']}/contacts/{ada['id']}")).status_code == 404
    assert (await api.delete(f"{BASE}/{second['id']}/contacts/{ada['id']}")).status_code == 404


TWENTY_ONE = {f"field {n}": "v" for n in range(21)}
INVALID_CONTACTS = [
    pytest.param({"email": "not-an-address"}, ["email"], id="no-at"),
    pytest.param({"email": "a b@example.org"}, ["email"], id="space"),
    pytest.param({"email": "ada@example..org"}, ["email"], id="empty-label"),
    pytest.param({"email": " ada@example.org"}, ["email"], id="leading-space"),
    pytest.param({"email": "ada@" + "x" * 300 + ".org"}, ["email"], id="too-long"),
    pytest.param({}, ["email"], id="missing"),
    pytest.param({"email": 5}, ["email"], id="wrong-type"),
    pytest.param({"email": "a@example.org", "language": "xx"}, ["language"], id="language"),
    pytest.param({"email": "a@example.org", "name": ""}, ["name"], id="empty-name"),
    pytest.param({"email": "a@example.org", "name": "E\x1b[2J"}, ["name"], id="name-escape"),
    pytest.param(
        {"email": "a@example.org", "attributes": TWENTY_ONE}, ["attributes"], id="21-attributes"
    ),
    pytest.param(
        {"email": "a@example.org", "attributes": {"": "v"}},
        ["attributes"],
        id="empty-attribute-name",
    ),
    pytest.param(
        {"email": "a@example.org", "attributes": {"k": "a\tb"}},
        ["attributes"],
        id="attribute-tab",
    ),
    pytest.param(
        {"email": "a@example.org", "attributes": {"k": "x" * 1001}},
        ["attributes"],
        id="attribute-too-long",
    ),
    pytest.param(
        {"email": "a@example.org", "attributes": {"k": 7}},
        ["attributes[...]"],
        id="attribute-not-text",
    ),
    pytest.param(
        {"email": "a@example.org", "attributes": ["k"]},
        ["attributes"],
        id="attributes-not-an-object",
    ),
    pytest.param(
        {"email": "a", "language": 1, "name": 2, "vip": True},
        ["email", "language", "name", "vip"],
        id="every-field",
    ),
]


@pytest.mark.parametrize(("body", "fields"), INVALID_CONTACTS)
async def test_a_bad_contact_is_422_naming_every_field_and_writes_nothing(api, body, fields):
    made = await create_list(api)
    response = await api.post(f"{BASE}/{made['id']}/contacts", json=body)
    assert response.status_code == 422, response.text
    assert sorted(e["field"] for e in problem_of(response)["errors"]) == fields
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0


async def test_every_bad_attribute_is_named_and_a_value_may_hold_line_breaks(api):
    made = await create_list(api)
    body = {"email": "a@example.org", "attributes": {"ok": "1", "bad\x1b": "v", "long": "x" * 1001}}
    response = await api.post(f"{BASE}/{made['id']}/contacts", json=body)
    message = problem_of(response)["errors"][0]["message"]
    assert "'bad\\x1b'" in message and "'long'" in message and "'ok'" not in message
    address = {"postal address": "17 quai Ferdinand-Favre\nNantes"}
    contact = await add_contact(api, made["id"], "a@example.org", attributes=address)
    assert contact["attributes"] == address


async def test_twenty_attributes_are_fine(api):
    made = await create_list(api)
    attributes = {f"field {n}": "v" for n in range(20)}
    contact = await add_contact(api, made["id"], "a@example.org", attributes=attributes)
    assert contact["attributes"] == attributes


async def test_a_ten_megabyte_attribute_is_413_and_writes_nothing(api):
    made = await create_list(api)
    body = {"email": "a@example.org", "attributes": {"notes": "x" * (10 * MIB)}}
    response = await api.post(f"{BASE}/{made['id']}/contacts", json=body)
    assert response.status_code == 413
    problem_of(response)
    assert (await api.get(f"{BASE}/{made['id']}")).json()["contacts"] == 0


@pytest.mark.parametrize(
    "q", ["\x00", "a\x00b", "%00", "\\", "'; DROP TABLE contact; --", "é" * 200]
)
async def test_any_search_text_is_an_answer_never_a_server_error(api, q):
    made = await create_list(api)
    await add_contact(api, made["id"], "ada@example.org")
    response = await api.get(f"{BASE}/{made['id']}/contacts", params={"q": q})
    assert response.status_code in {200, 400}, response.text
    if response.status_code == 200:
        assert response.json()["items"] == []
