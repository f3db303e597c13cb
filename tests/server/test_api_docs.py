"""The API docs at `/schema` come from this server alone: Swagger UI from the installed package,
started by a script of ours under a CSP that allows scripts from this origin only."""

from __future__ import annotations

import re

import pytest

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
ANY_URL = re.compile(r"(?:https?:)?//[^\s\"'<>]+")
# The docs do not touch the database: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _csp(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_the_docs_page_loads_only_assets_this_server_answers(client, path):
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert ANY_URL.findall(page.text) == []
    references = REFERENCE.findall(page.text)
    assert {ref.rsplit("/", 1)[1] for ref in references} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    }
    for reference in references:
        assert reference.startswith("/schema/"), reference
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    spec = re.search(r'data-openapi-url="([^"]+)"', page.text).group(1)
    assert (await client.get(spec)).json()["info"]["title"] == "Tessera"


async def test_the_docs_page_runs_no_inline_script_and_no_foreign_code(client):
    page = await client.get("/schema")
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == []
    policy = _csp(page.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive in policy.values():
        assert not any(ANY_URL.match(source) or source == "*" for source in directive)


async def test_the_assets_are_served_with_their_types_and_nothing_else_of_the_package(client):
    types = {
        "swagger-ui-bundle.js": "text/javascript",
        "swagger-ui.css": "text/css",
        "init.js": "text/javascript",
    }
    for name, media_type in types.items():
        response = await client.get(f"/schema/assets/{name}")
        assert response.headers["content-type"].startswith(media_type), name
        assert response.headers["x-content-type-options"] == "nosniff"
    for name in ["swagger-editor-bundle.js", "..%2f__init__.py", "index.css"]:
        assert (await client.get(f"/schema/assets/{name}")).status_code == 404, name


@pytest.mark.parametrize("path", ["/schema/redoc", "/schema/elements", "/schema/rapidoc"])
async def test_renderers_that_would_load_code_from_a_cdn_are_not_served(client, path):
    response = await client.get(path)
    assert response.status_code == 404
    assert ANY_URL.findall(response.text) == []
