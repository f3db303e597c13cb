"""OpenAPI adjustments so the published schema matches what the service really accepts, and the
API docs page at `/schema`, served from this server alone."""

from __future__ import annotations

import functools
import html
import importlib.util
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.datastructures import ResponseHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)
from litestar.params import FromPath

from server.problems import problem

__all__ = [
    "DOCS_CSP",
    "SelfHostedSwaggerPlugin",
    "StrictStructSchemaPlugin",
    "add_problem_responses",
    "docs_router",
]


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
        # The request's id, as in its X-Request-Id header and log lines (docs/metrics.md).
        "request_id": Schema(type=OpenAPIType.STRING),
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
    "429": "Over a rate limit (`rate_limited`); `Retry-After` says when to try again",
}
# Operations that answer more than their shape tells (docs/protocol.md sections 1, 8, 9).
_EXTRA_CODES = {
    "/api/v1/devices/pair": ["429"],
    "/api/v1/checkin/redeem": ["429"],
    "/api/v1/checkin/changes": ["409"],
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
            codes += [c for c in _EXTRA_CODES.get(path, []) if c not in codes]
            responses = operation.responses or {}
            for code in codes:
                documented = responses.get(code)
                # Litestar documents its own 400 body; every error here is problem+json.
                if documented is None or code == "400":
                    responses[code] = OpenAPIResponse(
                        description=_PROBLEM_TEXT[code],
                        content={"application/problem+json": OpenAPIMediaType(schema=reference)},
                    )
            operation.responses = responses


# The docs page runs Swagger UI from this origin only: no inline script or style, no CDN, no web
# fonts (Swagger UI sets styles through the DOM, which a CSP does not restrict).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The files of the swagger-ui-py package the page needs (nothing else of it is served), and ours.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
_INIT_SCRIPT = Path(__file__).with_name("openapi_init.js")
_ASSET_MAX_AGE = 3600


def docs_router(path: str = "/schema") -> Router:
    """The router Litestar puts the docs under, with the CSP on each of its answers."""
    return Router(
        path,
        route_handlers=[],
        include_in_schema=False,
        dto=None,
        return_dto=None,
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=DOCS_CSP),
            ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
            ResponseHeader(name="Referrer-Policy", value="no-referrer"),
        ],
    )


class SelfHostedSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI from the installed swagger-ui-py package at `/schema` and `/schema/swagger`,
    started by `openapi_init.js` from `/schema/assets/`, reading `/schema/openapi.json`."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/swagger"], favicon="", style="")
        self._base = "/schema"  # the docs router's path, learnt in receive_router

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        base = html.escape(self._base)
        title = html.escape(str(openapi_schema["info"]["title"]))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<link rel="icon" type="image/png" href="{base}/assets/favicon-32x32.png">
<link rel="stylesheet" href="{base}/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{base}/openapi.json"></div>
<script src="{base}/assets/swagger-ui-bundle.js"></script>
<script src="{base}/assets/init.js"></script>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        self._base = router.path.rstrip("/")

        @get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)
        def docs_asset(name: FromPath[str]) -> Response[Any]:
            if name != "init.js" and name not in _ASSETS:
                return problem(404, "not_found", f"no API docs file {name!r}")
            headers = {"Cache-Control": f"public, max-age={_ASSET_MAX_AGE}"}
            return Response(_read_asset(name), media_type=_media_type(name), headers=headers)

        router.register(docs_asset)


def _media_type(name: str) -> str:
    return "text/javascript" if name == "init.js" else _ASSETS[name]


@functools.cache
def _read_asset(name: str) -> bytes:
    """A docs file, read once (only ever called with the names above, so the cache is bounded)."""
    if name == "init.js":
        return _INIT_SCRIPT.read_bytes()
    return (_swagger_ui_static() / name).read_bytes()


def _swagger_ui_static() -> Path:
    # Located without importing the package: its __init__ pulls in helpers for other frameworks.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed (see pyproject.toml)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"
