"""Lists bigger than one write chunk (5,000 rows): imports, updates, merges and copies stay
exact across chunk boundaries, and a list is read for a campaign a batch at a time."""

from __future__ import annotations

import pytest

from server.contacts.service import iter_contacts
from server.db import Database
from server.errors import NotFound
from tests.server.contacts.helpers import BASE, create_list

N = 12_000
TEXT = {"Content-Type": "text/plain"}


def rows(start, stop, column="name", prefix="Guest"):
    lines = [f"email;{column}"] + [f"g{n:05}@example.org;{prefix} {n}" for n in range(start, stop)]
    return ("\n".join(lines) + "\n").encode()


async def commit(api, list_id, body, **params):
    response = await api.post(
        f"{BASE}/{list_id}/imports", params={"mode": "commit", **params}, content=body, headers=TEXT
    )
    assert response.status_code == 201, response.text[:500]
    return response.json()


async def test_a_large_import_update_merge_and_copy_are_exact(api, settings):
    big = await create_list(api, "Big")
    assert (await commit(api, big["id"], rows(0, N)))["contacts_after"] == N
    assert (await commit(api, big["id"], rows(0, N)))["rows"]["create"] == 0  # skip: nothing
    updated = await commit(api, big["id"], rows(0, N, prefix="Renamed"), duplicates="update")
    assert updated["rows"]["update"] == N and updated["contacts_after"] == N
    other = await create_list(api, "Other")
    await commit(api, other["id"], rows(N // 2, N + N // 2, column="city", prefix="City"))
    body = {"sources": [other["id"]], "preview": True}
    preview = (await api.post(f"{BASE}/{big['id']}/merge", json=body)).json()
    done = (await api.post(f"{BASE}/{big['id']}/merge", json={**body, "preview": False})).json()
    assert {**preview, "committed": True} == done
    assert (done["added"], done["duplicates_total"], done["completed"]) == (N // 2, N // 2, N // 2)
    assert len(done["duplicates"]) == 1000
    copy = (await api.post(f"{BASE}/{big['id']}/duplicate", json={})).json()
    assert copy["contacts"] == N + N // 2

    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            batches = [
                batch async for batch in iter_contacts(session, copy["id"], batch_size=5_000)
            ]
            with pytest.raises(NotFound):
                _ = [b async for b in iter_contacts(session, "NOSUCHLIST000000")]
    finally:
        await database.dispose()
    assert [len(batch) for batch in batches] == [5_000, 5_000, 5_000, 3_000]
    contacts = [contact for batch in batches for contact in batch]
    assert [c.email for c in contacts] == [f"g{n:05}@example.org" for n in range(N + N // 2)]
    middle = contacts[N - 1]  # in both lists: renamed by the update, completed by the merge
    assert (middle.name, middle.attributes) == (f"Renamed {N - 1}", {"city": f"City {N - 1}"})
    assert contacts[0].attributes == {} and contacts[-1].name is None
