"""OpenAPI adjustments so the published schema matches what the service really accepts."""

from __future__ import annotations

from typing import Any

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)

__all__ = ["StrictStructSchemaPlugin", "add_problem_responses"]


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Marks structs that refuse unknown fields with `additionalProperties: false`.

    Litestar leaves it out, so schema-driven fuzzers would take refusals of extra fields for bugs.
    """

    def to_openapi_schema(self, field_definition: Any, schema_creator: Any) -> Any:
        result = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            target = (
                schema_creator.schema_registry.from_reference(result).schema
                if hasattr(result, "ref")
                else result
            )
            if isinstance(target, Schema):
                target.additional_properties = False
        return result


PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "code": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "field": Schema(type=OpenAPIType.STRING),
                    "message": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
    },
    description="RFC 9457 problem details",
)

_PROBLEM_TEXT = {
    "400": "Malformed JSON, invalid UTF-8 or bad query parameters",
    "401": "Missing, unknown or revoked token",
    "403": "The token may not do this (read-only)",
    "404": "No such resource",
    "409": "Conflicts with the current state (names the conflicting resource)",
    "413": "Body over the size limit",
    "415": "Content-Type is not application/json",
    "422": "Validation failed; `errors` lists every bad field",
}


def add_problem_responses(openapi: OpenAPI) -> None:
    """Document the problem+json answers every organiser operation can give.

    Litestar documents error responses per handler only; this adds them to every `/api/v1`
    operation from what the operation is (authenticated, has a body, has path parameters).
    """
    components = openapi.components
    components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    reference = Reference(ref="#/components/schemas/Problem")
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None or not path.startswith("/api/v1"):
                continue
            codes = ["400"]
            if operation.security != []:
                codes += ["401", "403"]
            if "{" in path:
                codes.append("404")
            if operation.request_body is not None:
                codes += ["409", "413", "415", "422"]
            elif method in ("post", "delete"):
                codes.append("409")
            responses = operation.responses or {}
            for code in codes:
                responses.setdefault(
                    code,
                    OpenAPIResponse(
                        description=_PROBLEM_TEXT[code],
                        content={"application/problem+json": OpenAPIMediaType(schema=reference)},
                    ),
                )
            operation.responses = responses
