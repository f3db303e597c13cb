"""Health, readiness, access logs, OpenAPI and migrations: what an operator relies on."""

import json
import logging

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.db import Base, Database
from server.db import models as _models  # noqa: F401
from server.logs import JsonFormatter, redact_path
from tests.conftest import _create_pg_database, _drop_pg_database, _pg_url


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_readiness_fails_when_the_database_goes_away(settings):
    """A scratch PostgreSQL database is dropped under a running app: /readyz says 503."""
    name = await _create_pg_database()
    app = create_app(settings.replace(database_url=_pg_url(name)))
    try:
        async with AsyncTestClient(app) as client:
            assert (await client.get("/readyz")).status_code == 200
            await _drop_pg_database(name)
            response = await client.get("/readyz")
    finally:
        await _drop_pg_database(name)
    assert response.status_code == 503
    assert response.json()["code"] == "database_unreachable"


async def test_every_request_logs_one_json_line_without_guest_secrets(settings, caplog):
    app = create_app(settings.replace(access_log=True))
    async with AsyncTestClient(app) as client:
        with caplog.at_level(logging.INFO, logger="tessera.access"):
            await client.get("/healthz")
            await client.get("/t/SECRETLINK123/qr.svg")
    records = [r for r in caplog.records if r.name == "tessera.access"]
    assert len(records) == 2
    lines = [json.loads(JsonFormatter().format(r)) for r in records]
    assert lines[0]["path"] == "/healthz" and lines[0]["status"] == 200
    assert lines[0]["method"] == "GET" and lines[0]["duration_ms"] >= 0
    assert "SECRETLINK123" not in json.dumps(lines[1])


def test_guest_links_are_redacted_from_paths():
    assert redact_path("/t/abc/qr.svg") == "/t/…/qr.svg"
    assert redact_path("/api/v1/events") == "/api/v1/events"


async def test_migrations_build_exactly_the_models(database_url):
    database = Database(database_url)

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    try:
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(diff)
    finally:
        await database.dispose()
    assert differences == []


async def test_openapi_documents_every_route_with_strict_bodies(client):
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in [
        "/api/v1/events",
        "/api/v1/events/{event_id}",
        "/api/v1/events/{event_id}/ticket-types",
        "/api/v1/events/{event_id}/bookings",
        "/api/v1/bookings/{booking_id}",
        "/api/v1/bookings/{booking_id}/confirm",
        "/api/v1/bookings/{booking_id}/cancel",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths, path
    body = paths["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    ref = body["schema"]["$ref"].rsplit("/", 1)[1]
    component = schema["components"]["schemas"][ref]
    assert component["additionalProperties"] is False
    assert set(component["required"]) == {"name", "starts_at", "timezone"}


async def test_openapi_says_every_api_error_is_problem_json_with_the_codes_it_can_be(client):
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path, item in paths.items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in item.items():
            for code, response in operation.get("responses", {}).items():
                if code.startswith(("4", "5")):
                    assert set(response.get("content", {})) == {"application/problem+json"}, (
                        method,
                        path,
                        code,
                    )
    assert "429" in paths["/api/v1/devices/pair"]["post"]["responses"]
    assert "429" in paths["/api/v1/checkin/redeem"]["post"]["responses"]
    assert "409" in paths["/api/v1/checkin/changes"]["get"]["responses"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events/%00",
        "/api/v1/events/%00/ticket-types",
        "/api/v1/bookings/a%00b",
        "/api/v1/tickets/%00",
        "/api/v1/devices/%00",
        "/t/%00",
        "/t/%00/qr.svg",
    ],
)
async def test_a_nul_in_a_path_parameter_is_a_404_never_a_database_error(api, path):
    response = await api.get(path)
    assert response.status_code == 404, response.text
