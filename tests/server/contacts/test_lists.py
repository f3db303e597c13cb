"""Contact lists over the organiser API: create, list, read, rename, delete, and every way a
client can get them wrong (each test on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.conftest import problem_of
from tests.server.contacts.helpers import BASE, add_contact, create_list

MIB = 1024 * 1024


async def test_create_answers_201_with_location_and_an_empty_list(api):
    response = await api.post(BASE, json={"name": "Donors 2027"})
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"https://tickets.test{BASE}/{created['id']}"
    assert created["name"] == "Donors 2027"
    assert created["contacts"] == 0
    assert created["archived_at"] is None and created["merged_into_id"] is None
    assert response.headers["cache-control"] == "no-store"
    assert (await api.get(f"{BASE}/{created['id']}")).json() == created


async def test_the_listing_is_paginated_with_total(api):
    made = [await create_list(api, f"List {n}") for n in range(5)]
    answer = (await api.get(BASE, params={"limit": 2, "offset": 1})).json()
    assert (answer["total"], answer["limit"], answer["offset"]) == (5, 2, 1)
    assert [item["id"] for item in answer["items"]] == [made[1]["id"], made[2]["id"]]
    assert (await api.get(BASE)).json()["limit"] == 50


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 501},
        {"limit": 0},
        {"offset": -1},
        {"limit": "x"},
        {"offset": 2**70},
        {"limit": 2**70},
        {"archived": "maybe"},
    ],
)
async def test_bad_paging_or_filters_are_refused(api, params):
    response = await api.get(BASE, params=params)
    assert response.status_code == 400
    assert problem_of(response)["errors"]


async def test_rename_changes_the_name_and_an_empty_patch_nothing(api):
    made = await create_list(api)
    renamed = await api.patch(f"{BASE}/{made['id']}", json={"name": "VIP"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "VIP"
    unchanged = (await api.patch(f"{BASE}/{made['id']}", json={})).json()
    assert unchanged["name"] == "VIP"


async def test_delete_removes_the_list_and_its_contacts(api):
    made = await create_list(api)
    await add_contact(api, made["id"], "ada@example.org")
    response = await api.delete(f"{BASE}/{made['id']}")
    assert response.status_code == 204
    assert (await api.get(f"{BASE}/{made['id']}")).status_code == 404
    assert (await api.get(f"{BASE}/{made['id']}/contacts")).status_code == 404
    assert (await api.get(BASE)).json()["total"] == 0


UNKNOWN = "NOSUCHLIST000000"
UNKNOWN_LIST_CALLS = [
    ("GET", f"{BASE}/{UNKNOWN}", None),
    ("PATCH", f"{BASE}/{UNKNOWN}", {"name": "x"}),
    ("DELETE", f"{BASE}/{UNKNOWN}", None),
    ("GET", f"{BASE}/{UNKNOWN}/contacts", None),
    ("POST", f"{BASE}/{UNKNOWN}/contacts", {"email": "a@example.org"}),
    ("GET", f"{BASE}/{UNKNOWN}/contacts/NOSUCHCONTACT000", None),
    ("DELETE", f"{BASE}/{UNKNOWN}/contacts/NOSUCHCONTACT000", None),
    ("POST", f"{BASE}/{UNKNOWN}/duplicate", {}),
    ("POST", f"{BASE}/{UNKNOWN}/merge", {"sources": ["OTHER"], "preview": True}),
    ("GET", f"{BASE}/{UNKNOWN}%00", None),
]


@pytest.mark.parametrize(("method", "path", "body"), UNKNOWN_LIST_CALLS)
async def test_a_list_that_does_not_exist_is_404(api, method, path, body):
    response = await api.request(method, path, json=body)
    assert response.status_code == 404, response.text
    assert problem_of(response)["code"] == "not_found"


async def test_an_unknown_contact_of_a_known_list_is_404_naming_the_contact(api):
    made = await create_list(api)
    response = await api.get(f"{BASE}/{made['id']}/contacts/NOSUCHCONTACT000")
    assert response.status_code == 404
    assert problem_of(response)["resource"] == "contact"


INVALID_NAMES = [
    pytest.param({"name": ""}, ["name"], id="empty"),
    pytest.param({"name": "x" * 201}, ["name"], id="201-characters"),
    pytest.param({"name": 5}, ["name"], id="wrong-type"),
    pytest.param({"name": None}, ["name"], id="null"),
    pytest.param({"name": "Eve\x1b]0;owned\x07"}, ["name"], id="escape-sequence"),
    pytest.param({"name": "Eve\n"}, ["name"], id="trailing-newline"),
    pytest.param({"name": "Eve\u0000"}, ["name"], id="nul"),
    pytest.param({"name": "Eve\x9b2J"}, ["name"], id="c1-control"),
    pytest.param({"name": "ok", "colour": "red"}, ["colour"], id="unknown-field"),
    pytest.param({}, ["name"], id="missing"),
    pytest.param({"name": 1, "owner": 2, "x": 3}, ["name", "owner", "x"], id="every-field"),
]


@pytest.mark.parametrize(("body", "fields"), INVALID_NAMES)
async def test_a_bad_list_body_is_422_naming_every_field_and_writes_nothing(api, body, fields):
    response = await api.post(BASE, json=body)
    assert response.status_code == 422, response.text
    assert sorted(e["field"] for e in problem_of(response)["errors"]) == fields
    assert (await api.get(BASE)).json()["total"] == 0


@pytest.mark.parametrize(("body", "fields"), INVALID_NAMES[:9])
async def test_a_bad_rename_is_422_and_keeps_the_name(api, body, fields):
    made = await create_list(api)
    response = await api.patch(f"{BASE}/{made['id']}", json=body)
    assert response.status_code == 422
    assert sorted(e["field"] for e in problem_of(response)["errors"]) == fields
    assert (await api.get(f"{BASE}/{made['id']}")).json()["name"] == made["name"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"name": "x",', "application/json", 400),
        (b"\xff\xfe{}", "application/json", 400),
        (b"[]", "application/json", 422),
        (b"", "application/json", 400),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "application/json", 400),
        (b"name=x", "text/plain", 415),
        (b'{"name": "x"}', "application/x-www-form-urlencoded", 415),
    ],
)
async def test_malformed_bodies_are_refused_as_problems(api, content, content_type, status):
    response = await api.post(BASE, content=content, headers={"Content-Type": content_type})
    assert response.status_code == status
    problem_of(response)
    assert (await api.get(BASE)).json()["total"] == 0


async def test_a_ten_megabyte_name_is_413(api):
    response = await api.post(BASE, json={"name": "x" * (10 * MIB)})
    assert response.status_code == 413
    problem_of(response)


async def test_calls_without_a_token_are_401_and_read_only_tokens_may_only_read(
    client, read_only_token
):
    assert (await client.get(BASE)).status_code == 401
    client.headers["Authorization"] = f"Bearer {read_only_token}"
    assert (await client.get(BASE)).status_code == 200
    response = await client.post(BASE, json={"name": "x"})
    assert response.status_code == 403
    problem_of(response)


async def test_the_api_is_in_the_openapi_document_with_strict_bodies(client):
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in [
        BASE,
        f"{BASE}/{{list_id}}",
        f"{BASE}/{{list_id}}/contacts",
        f"{BASE}/{{list_id}}/contacts/{{contact_id}}",
        f"{BASE}/{{list_id}}/duplicate",
        f"{BASE}/{{list_id}}/merge",
    ]:
        assert path in paths, path
    merge = paths[f"{BASE}/{{list_id}}/merge"]["post"]["requestBody"]["content"]
    ref = merge["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][ref]["additionalProperties"] is False
