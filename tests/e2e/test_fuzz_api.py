"""Schema-driven fuzzing: schemathesis sends what the OpenAPI document allows, and worse.

It runs against a real `tessera serve` on both databases; the property checked is the one that
must always hold: whatever arrives, the service never answers with a server error. Examples are
derandomised and bounded, so a run is repeatable and short.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from tests.live import live_server

pytestmark = pytest.mark.fuzz

EXAMPLES_PER_OPERATION = 25  # per operation and mode (valid, then invalid requests)


def test_no_generated_request_makes_the_server_fail(settings, organiser_token, tmp_path):
    headers = {"Authorization": f"Bearer {organiser_token}"}
    with live_server(settings, tmp_path / "server.log") as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        negative = 0
        for operation in operations:
            _fuzz(operation, GenerationMode.POSITIVE, base_url, headers)
            try:
                _fuzz(operation, GenerationMode.NEGATIVE, base_url, headers)
                negative += 1
            except hypothesis.errors.Unsatisfiable:
                pass  # an operation without parameters or body has nothing to get wrong
        assert negative >= 8, "invalid requests were generated for most operations"


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
