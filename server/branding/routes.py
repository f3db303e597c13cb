"""The logo and banner over HTTP: `PUT|DELETE /api/v1/events/{id}/branding/{logo|banner}` for
organisers (the image's bytes as the body), and the public `GET /brand/{event}/{name}`."""

from __future__ import annotations

from typing import cast

from litestar import Controller, Request, Response, delete, get, head, put
from litestar.params import FromPath

from server.branding import service
from server.branding.images import clean_image
from server.errors import NotFound
from server.http import DbSession, organiser_guard

__all__ = ["BrandImageController", "BrandingController"]

_YEAR = 365 * 24 * 3600
_EMPTY = cast(None, b"")  # a HEAD handler is typed bodiless; rendered bytes pass as they are

# An image's name carries its content's hash: it never changes, and runs nothing.
_HEADERS = {
    "Cache-Control": f"public, max-age={_YEAR}, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


class BrandingController(Controller):
    path = "/api/v1/events/{event_id:str}/branding"
    tags = ["events"]
    guards = [organiser_guard]
    security = [{"organiser": []}]

    @put("/{kind:str}", summary="Upload the event's logo or banner (PNG, JPEG or WebP bytes)")
    async def put_image(
        self, request: Request, event_id: FromPath[str], kind: FromPath[str], db_session: DbSession
    ) -> Response[dict[str, str | int]]:
        raw = await request.body()
        image = await service.put_image(db_session, event_id, kind, clean_image(raw))
        body: dict[str, str | int] = {
            "kind": image.kind,
            "url": service.image_path(image),
            "content_type": image.content_type,
            "width": image.width,
            "height": image.height,
        }
        return Response(body, status_code=200)

    @delete("/{kind:str}", summary="Remove the event's logo or banner", status_code=204)
    async def delete_image(
        self, event_id: FromPath[str], kind: FromPath[str], db_session: DbSession
    ) -> None:
        await service.remove_image(db_session, event_id, kind)


class BrandImageController(Controller):
    path = "/brand"
    tags = ["guests"]

    @get("/{event_id:str}/{name:str}", summary="An event's logo or banner (public, immutable)")
    async def image(
        self, event_id: FromPath[str], name: FromPath[str], db_session: DbSession
    ) -> Response[bytes]:
        image = await service.find_image(db_session, event_id, name)
        return Response(image.data, media_type=image.content_type, headers=_HEADERS)

    @head("/{event_id:str}/{name:str}", summary="The headers of an event's logo or banner")
    async def image_head(
        self, event_id: FromPath[str], name: FromPath[str], db_session: DbSession
    ) -> Response[None]:
        # Litestar writes no Content-Type on a HEAD answer: set here, with GET's length.
        try:
            content_type, length = await service.find_image_head(db_session, event_id, name)
        except NotFound:  # a HEAD answer carries no body, not even a problem's
            headers = {"Content-Type": "application/problem+json"}
            return Response(_EMPTY, status_code=404, headers=headers)
        headers = {**_HEADERS, "Content-Type": content_type, "Content-Length": str(length)}
        return Response(_EMPTY, headers=headers)
