"""Duplicating and merging contact lists: copies keep everything, a merge keeps the target's
contacts and completes them, a preview says exactly what the merge then does and writes nothing,
and merged lists are archived read-only."""

from __future__ import annotations

import pytest

from server.contacts.merge import complete_contact, plan_merge
from server.contacts.store import ContactRow
from tests.conftest import problem_of
from tests.server.contacts.helpers import BASE, add_contact, contacts_of, content, create_list


async def merge(api, target, sources, *, preview):
    return await api.post(f"{BASE}/{target}/merge", json={"sources": sources, "preview": preview})


async def snapshot(api):
    """Every list (active and archived) with its contacts: to show nothing changed."""
    lists = (await api.get(BASE)).json()["items"]
    lists += (await api.get(BASE, params={"archived": "true"})).json()["items"]
    return {item["id"]: (item, await contacts_of(api, item["id"])) for item in lists}


# --- duplicate ------------------------------------------------------------------------------


async def test_duplicate_copies_every_contact_with_its_attributes_into_a_new_list(api):
    source = await create_list(api, "Donors")
    await add_contact(
        api,
        source["id"],
        "ada@example.org",
        name="Ada",
        language="en",
        attributes={"company": "AE", "table": "7"},
    )
    await add_contact(api, source["id"], "bob@example.org")
    response = await api.post(f"{BASE}/{source['id']}/duplicate", json={})
    assert response.status_code == 201, response.text
    copy = response.json()
    assert response.headers["location"].endswith(f"{BASE}/{copy['id']}")
    assert copy["id"] != source["id"]
    assert copy["name"] == "Donors (copy)" and copy["contacts"] == 2
    originals = await contacts_of(api, source["id"])
    copies = await contacts_of(api, copy["id"])
    assert [content(c) for c in copies] == [content(c) for c in originals]
    assert {c["id"] for c in copies}.isdisjoint(c["id"] for c in originals)
    assert {c["list_id"] for c in copies} == {copy["id"]}


async def test_a_copy_is_independent_of_its_source(api):
    source = await create_list(api)
    ada = await add_contact(api, source["id"], "ada@example.org")
    copy = (await api.post(f"{BASE}/{source['id']}/duplicate", json={"name": "Mine"})).json()
    assert copy["name"] == "Mine"
    await api.delete(f"{BASE}/{source['id']}/contacts/{ada['id']}")
    assert [c["email"] for c in await contacts_of(api, copy["id"])] == ["ada@example.org"]


async def test_a_long_name_stays_within_200_characters_when_copied(api):
    source = await create_list(api, "x" * 200)
    copy = (await api.post(f"{BASE}/{source['id']}/duplicate", json={})).json()
    assert len(copy["name"]) == 200 and copy["name"].endswith(" (copy)")


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": "a\x00"}, {"name": "x" * 201}, {"nom": "x"}, {"name": 1}]
)
async def test_a_bad_duplicate_body_is_422_and_copies_nothing(api, body):
    source = await create_list(api)
    response = await api.post(f"{BASE}/{source['id']}/duplicate", json=body)
    assert response.status_code == 422
    problem_of(response)
    assert (await api.get(BASE)).json()["total"] == 1


# --- merge ----------------------------------------------------------------------------------


async def three_lists(api):
    target = await create_list(api, "Target")
    first = await create_list(api, "First")
    second = await create_list(api, "Second")
    await add_contact(
        api, target["id"], "ada@example.org", name="Ada", attributes={"company": "AE"}
    )
    await add_contact(api, target["id"], "bob@example.org")
    await add_contact(
        api,
        first["id"],
        "ADA@example.org",
        name="Countess",
        language="en",
        attributes={"company": "Other", "table": "7"},
    )
    await add_contact(api, first["id"], "carol@example.org", name="Carol")
    await add_contact(
        api,
        second["id"],
        "carol@example.org",
        name="Caroline",
        language="fr",
        attributes={"diet": "vegan"},
    )
    await add_contact(api, second["id"], "bob@example.org", name="Bob", language="de")
    await add_contact(api, second["id"], "dan@example.org")
    return target, first, second


async def test_a_merge_keeps_the_targets_contacts_and_completes_them_missing_only(api):
    target, first, second = await three_lists(api)
    response = await merge(api, target["id"], [first["id"], second["id"]], preview=False)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["committed"] is True
    assert (result["contacts_before"], result["added"], result["contacts_after"]) == (2, 2, 4)
    assert result["duplicates_total"] == 3 and result["completed"] == 2
    assert [(s["id"], s["contacts"]) for s in result["sources"]] == [
        (first["id"], 2),
        (second["id"], 3),
    ]
    assert {(d["email"], d["kept_from"], d["dropped_from"]) for d in result["duplicates"]} == {
        ("ada@example.org", target["id"], first["id"]),
        ("carol@example.org", first["id"], second["id"]),
        ("bob@example.org", target["id"], second["id"]),
    }
    merged = {c["email"]: content(c) for c in await contacts_of(api, target["id"])}
    assert merged == {
        # the target's name and company stay; language and table were missing
        "ada@example.org": ("ada@example.org", "Ada", "en", {"company": "AE", "table": "7"}),
        "bob@example.org": ("bob@example.org", "Bob", "de", {}),
        # the earlier source wins over the later one, and is completed by it
        "carol@example.org": ("carol@example.org", "Carol", "fr", {"diet": "vegan"}),
        "dan@example.org": ("dan@example.org", None, None, {}),
    }
    assert (await api.get(f"{BASE}/{target['id']}")).json()["contacts"] == 4


async def test_merged_sources_are_archived_read_only_and_listed_apart(api):
    target, first, second = await three_lists(api)
    await merge(api, target["id"], [first["id"]], preview=False)
    archived = (await api.get(f"{BASE}/{first['id']}")).json()
    assert archived["archived_at"] is not None and archived["merged_into_id"] == target["id"]
    assert archived["contacts"] == 2  # a source keeps its own contacts
    active = [item["id"] for item in (await api.get(BASE)).json()["items"]]
    assert active == [target["id"], second["id"]]
    listed = (await api.get(BASE, params={"archived": "true"})).json()
    assert [item["id"] for item in listed["items"]] == [first["id"]]
    refusals = [
        await api.post(f"{BASE}/{first['id']}/contacts", json={"email": "z@example.org"}),
        await merge(api, first["id"], [second["id"]], preview=False),
        await merge(api, first["id"], [second["id"]], preview=True),
        await merge(api, second["id"], [first["id"]], preview=False),
        await merge(api, second["id"], [first["id"]], preview=True),
    ]
    contact = (await contacts_of(api, first["id"]))[0]
    refusals.append(await api.delete(f"{BASE}/{first['id']}/contacts/{contact['id']}"))
    for response in refusals:
        assert response.status_code == 409, response.text
        problem = problem_of(response)
        assert problem["code"] == "list_archived"
        assert problem["id"] == first["id"] and problem["merged_into_id"] == target["id"]
    assert (await api.get(f"{BASE}/{first['id']}")).json()["contacts"] == 2
    # still readable, renamable, copyable (the copy is active) and deletable
    assert len(await contacts_of(api, first["id"])) == 2
    assert (await api.patch(f"{BASE}/{first['id']}", json={"name": "Old"})).status_code == 200
    copy = (await api.post(f"{BASE}/{first['id']}/duplicate", json={})).json()
    assert copy["archived_at"] is None and copy["contacts"] == 2
    assert (await api.delete(f"{BASE}/{first['id']}")).status_code == 204


async def test_deleting_the_list_merged_into_leaves_its_archived_sources(api):
    target, first, _ = await three_lists(api)
    await merge(api, target["id"], [first["id"]], preview=False)
    assert (await api.delete(f"{BASE}/{target['id']}")).status_code == 204
    archived = (await api.get(f"{BASE}/{first['id']}")).json()
    assert archived["archived_at"] is not None and archived["merged_into_id"] is None
    assert archived["contacts"] == 2


async def test_a_preview_writes_nothing_and_equals_the_merge_that_follows(api):
    target, first, second = await three_lists(api)
    before = await snapshot(api)
    preview = await merge(api, target["id"], [first["id"], second["id"]], preview=True)
    assert preview.status_code == 200, preview.text
    assert await snapshot(api) == before
    again = await merge(api, target["id"], [first["id"], second["id"]], preview=True)
    assert again.json() == preview.json()
    done = await merge(api, target["id"], [first["id"], second["id"]], preview=False)
    assert preview.json()["committed"] is False and done.json()["committed"] is True
    assert {**preview.json(), "committed": True} == done.json()


INVALID_MERGES = [
    pytest.param({"sources": [], "preview": True}, ["sources"], id="no-source"),
    pytest.param({"sources": ["A", "A"], "preview": True}, ["sources"], id="repeated"),
    pytest.param({"sources": ["A"]}, ["preview"], id="preview-missing"),
    pytest.param({"sources": ["A"], "preview": "yes"}, ["preview"], id="preview-not-bool"),
    pytest.param({"sources": "A", "preview": True}, ["sources"], id="sources-not-list"),
    pytest.param({"sources": ["a b"], "preview": True}, ["sources[0]"], id="bad-id"),
    pytest.param({"sources": [2**70], "preview": True}, ["sources[0]"], id="huge-int"),
    pytest.param({"sources": ["x" * 10_000], "preview": True}, ["sources[0]"], id="long-id"),
    pytest.param(
        {"sources": [f"L{n}" for n in range(51)], "preview": True}, ["sources"], id="51-sources"
    ),
    pytest.param({"sources": ["A"], "preview": True, "into": "B"}, ["into"], id="unknown"),
]


@pytest.mark.parametrize(("body", "fields"), INVALID_MERGES)
async def test_a_bad_merge_body_is_422_naming_the_fields(api, body, fields):
    target = await create_list(api)
    response = await api.post(f"{BASE}/{target['id']}/merge", json=body)
    assert response.status_code == 422, response.text
    assert sorted(e["field"] for e in problem_of(response)["errors"]) == fields


async def test_merging_a_list_into_itself_is_422_and_an_unknown_source_404(api):
    target, first, _ = await three_lists(api)
    before = await snapshot(api)
    itself = await merge(api, target["id"], [first["id"], target["id"]], preview=False)
    assert itself.status_code == 422
    assert problem_of(itself)["errors"][0]["field"] == "sources"
    unknown = await merge(api, target["id"], [first["id"], "NOSUCHLIST000000"], preview=False)
    assert unknown.status_code == 404
    assert problem_of(unknown)["id"] == "NOSUCHLIST000000"
    assert await snapshot(api) == before


# --- the rules, without a database ------------------------------------------------------------


def row(email, **fields):
    return ContactRow(email=email, email_key=email.lower(), **fields)


def test_completing_never_overwrites_and_stops_at_twenty_attributes():
    kept = row("a@x.org", name="Ada", attributes={f"k{n}": "v" for n in range(19)} | {"e": ""})
    other = row(
        "a@x.org",
        name="Other",
        language="fr",
        attributes={"k0": "new", "e": "filled", "extra1": "1", "extra2": "2"},
    )
    assert complete_contact(kept, other) is True
    assert kept.name == "Ada" and kept.language == "fr"
    assert kept.attributes["k0"] == "v" and kept.attributes["e"] == "filled"
    assert len(kept.attributes) == 20 and "extra1" not in kept.attributes
    assert complete_contact(kept, other) is False


def test_a_plan_adds_each_new_address_once_in_source_order():
    target = [row("a@x.org", id="T1")]
    plan = plan_merge(
        "T",
        target,
        [
            ("S1", [row("b@x.org"), row("A@x.org", name="A")]),
            ("S2", [row("b@x.org", language="de"), row("c@x.org")]),
        ],
    )
    assert [r.email for r in plan.added] == ["b@x.org", "c@x.org"]
    assert plan.added[0].language == "de"  # completed by the later source before insertion
    assert list(plan.completed) == ["T1"] and plan.duplicates_total == 2
