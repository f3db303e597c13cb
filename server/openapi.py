"""OpenAPI adjustments so the published schema matches what the service really accepts."""

from __future__ import annotations

from typing import Any

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import Schema

__all__ = ["StrictStructSchemaPlugin"]


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
