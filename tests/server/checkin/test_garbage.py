"""Garbage into every check-in endpoint: a clear 4xx problem+json, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from server.changes.models import Change
from server.checkin.models import CheckinList, Device, ScanRow
from server.db import Database
from tests.conftest import problem_of
from tests.server.checkin.helpers import venue

JSON = {"Content-Type": "application/json"}
HUGE = b'{"scan_id": "' + b"x" * (1024 * 1024) + b'"}'

# (raw body, extra headers, expected status)
GARBAGE = [
    pytest.param(b"{not json", JSON, 400, id="malformed-json"),
    pytest.param(b'{"scan_id": "\xff\xfe"}', JSON, 400, id="invalid-utf8"),
    pytest.param(b"[]", JSON, 422, id="not-an-object"),
    pytest.param(b'{"scan_id": 1, "code": [], "list_id": null}', JSON, 422, id="wrong-types"),
    pytest.param(b'{"surprise": true}', JSON, 422, id="unknown-field"),
    pytest.param(b"{}", JSON, 422, id="missing-fields"),
    pytest.param(HUGE, JSON, 413, id="one-megabyte-string"),
    pytest.param(b'{"scan_id": "a"}', {"Content-Type": "text/plain"}, 415, id="wrong-type"),
    pytest.param(b'{"scan_id": "a"} trailing', JSON, 400, id="trailing-bytes"),
]


async def _written(settings: Any) -> tuple[int, ...]:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            counts = []
            for model in (ScanRow, Change, Device, CheckinList):
                counts.append(await session.scalar(select(func.count()).select_from(model)))
            return tuple(int(c or 0) for c in counts)
    finally:
        await database.dispose()


def _endpoints(v: Any) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/api/v1/checkin/redeem", v.door.headers),
        ("/api/v1/checkin/annul", v.door.headers),
        ("/api/v1/devices/pair", {}),
        (f"/api/v1/events/{v.event_id}/checkin-lists", {}),
        (f"/api/v1/events/{v.event_id}/devices", {}),
    ]


@pytest.mark.parametrize(("raw", "headers", "status"), GARBAGE)
async def test_garbage_bodies_get_a_problem_and_write_nothing(api, settings, raw, headers, status):
    v = await venue(api)
    before = await _written(settings)
    for path, auth in _endpoints(v):
        response = await api.post(path, content=raw, headers={**auth, **headers})
        assert response.status_code == status, (path, response.text)
        problem_of(response)
    assert await _written(settings) == before


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"direction": "sideways"}, id="unknown-direction"),
        pytest.param({"scanned_at": "2031-06-14T20:00:00"}, id="naive-time"),
        pytest.param({"offline": "true"}, id="string-for-bool"),
        pytest.param({"scan_id": "x" * 65}, id="overlong-scan-id"),
        pytest.param({"code": ""}, id="empty-code"),
    ],
)
async def test_a_redeem_with_a_bad_field_is_422_naming_it(api, settings, body):
    v = await venue(api)
    scan = {"scan_id": "s1", "code": v.tickets[0]["code"], "list_id": v.list_id} | body
    before = await _written(settings)
    response = await api.post("/api/v1/checkin/redeem", json=scan, headers=v.door.headers)
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == next(iter(body))
    assert await _written(settings) == before


@pytest.mark.parametrize("since", ["-1", "x", "", str(2**70)])
async def test_changes_with_a_bad_cursor_is_400(api, since):
    v = await venue(api)
    response = await api.get(f"/api/v1/checkin/changes?since={since}", headers=v.door.headers)
    assert response.status_code == 400
    problem_of(response)


async def test_control_characters_in_ids_are_refused_and_in_codes_are_recorded(api):
    """Found by schemathesis: a NUL in a scan id or code once reached PostgreSQL as a 500."""
    v = await venue(api)
    refused = await api.post(
        "/api/v1/checkin/redeem",
        json={"scan_id": "a\u0000b", "code": "x", "list_id": v.list_id},
        headers=v.door.headers,
    )
    assert refused.status_code == 422
    assert problem_of(refused)["errors"][0]["field"] == "scan_id"
    nul_code = await api.post(
        "/api/v1/checkin/redeem",
        json={"scan_id": "nul-code", "code": "\u0000x", "list_id": v.list_id},
        headers=v.door.headers,
    )
    assert nul_code.status_code == 422
    recorded = await api.post(
        "/api/v1/checkin/redeem",
        json={"scan_id": "gs1-code", "code": "\u001d\u00d9", "list_id": v.list_id},
        headers=v.door.headers,
    )
    assert recorded.status_code == 200
    assert (recorded.json()["verdict"], recorded.json()["reason"]) == ("rejected", "invalid")


async def test_a_list_window_that_ends_before_it_starts_names_valid_until(api):
    v = await venue(api)
    response = await api.post(
        f"/api/v1/events/{v.event_id}/checkin-lists",
        json={
            "name": "Late door",
            "valid_from": "2027-03-14T20:00:00+01:00",
            "valid_until": "2027-03-14T19:00:00+01:00",
        },
    )
    assert response.status_code == 422
    assert [e["field"] for e in problem_of(response)["errors"]] == ["valid_until"]
