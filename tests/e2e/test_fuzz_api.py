"""Schema-driven fuzzing: schemathesis sends what the OpenAPI document allows, and worse.

It runs against a real `tessera serve` on both databases; the property checked is the one that
must always hold: whatever arrives, the service never answers with a server error. Examples are
derandomised and bounded, so a run is repeatable and short.
"""

from __future__ import annotations

import os

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from tests.factories import booking_body, event_body
from tests.live import live_server

pytestmark = pytest.mark.fuzz

# Per operation and mode (valid, then invalid requests): 6 keeps the suite inside CI's 20 minutes
# on two cores; TESSERA_FUZZ_EXAMPLES=100 fuzzes deeper.
EXAMPLES_PER_OPERATION = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "6"))


def test_no_generated_request_makes_the_server_fail(settings, organiser_token, tmp_path):
    organiser = {"Authorization": f"Bearer {organiser_token}"}
    with live_server(settings, tmp_path / "server.log") as base_url:
        device = {"Authorization": f"Bearer {_paired_device_token(base_url, organiser)}"}
        schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        negative = 0
        for operation in operations:
            # Device calls are fuzzed with a paired device's token, the rest as the organiser.
            is_device_call = operation.path.startswith("/api/v1/checkin/")
            headers = device if is_device_call else organiser
            _fuzz(operation, GenerationMode.POSITIVE, base_url, headers)
            try:
                _fuzz(operation, GenerationMode.NEGATIVE, base_url, headers)
                negative += 1
            except hypothesis.errors.Unsatisfiable:
                pass  # an operation without parameters or body has nothing to get wrong
        assert negative >= 8, "invalid requests were generated for most operations"


def _paired_device_token(base_url, organiser):
    """A device paired to a fresh event with a check-in list and a confirmed booking."""
    with httpx.Client(base_url=base_url, headers=organiser, timeout=10) as api:
        event = api.post("/api/v1/events", json=event_body()).json()
        ticket_type = api.post(
            f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard"}
        ).json()
        booking = booking_body(ticket_type["id"], 2, confirm=True)
        assert api.post(f"/api/v1/events/{event['id']}/bookings", json=booking).is_success
        api.post(f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main"})
        device = api.post(f"/api/v1/events/{event['id']}/devices", json={"name": "Door"}).json()
        paired = api.post("/api/v1/devices/pair", json={"pairing_code": device["pairing_code"]})
        return str(paired.json()["token"])


def _fuzz(operation, mode, base_url, headers):
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        case.validate_response(response, checks=[not_a_server_error])

    run()
