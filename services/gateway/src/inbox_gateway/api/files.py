"""``POST /api/uploads`` (streamed to ingest) and ``GET /api/media/{id}`` (streamed from ingest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException, InternalServerException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from inbox_core.errors import InvalidRequest
from inbox_gateway import models as m
from inbox_gateway.api.common import GatewayDep, PrincipalDep, errors, one_workspace
from inbox_gateway.uploads import MAX_BODY_BYTES, MEDIA_RULES, receive_upload

INLINE_PREFIXES = ("image/", "video/", "audio/")


@dataclass
class UploadOperation(Operation):
    """The body is read as a stream (not parsed by Litestar), so its schema is declared here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, content={"multipart/form-data": OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.OBJECT, required=["file"], properties={
                "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY,
                               description="The file, with its Content-Type")}))})


@post("/api/uploads", status_code=201, tags=["media"], summary="Upload a file to send (multipart field 'file')",
      request_max_body_size=MAX_BODY_BYTES, responses=errors(404, 413, 415), operation_class=UploadOperation,
      description="Meta's types and limits: image (jpeg, png) 5 MB; video (mp4, 3gpp) and audio (aac, mp4, "
      "mpeg, amr, ogg) 16 MB; document (pdf, text, Office) 100 MB. The file streams to storage as it arrives. "
      "Agents of several workspaces pass ?workspace=<id>. Allowed types: " + ", ".join(sorted(MEDIA_RULES)))
async def upload(
    gateway: GatewayDep, principal: PrincipalDep, request: Request[Any, Any, Any],
    workspace: Annotated[str | None, QueryParameter(description="Required when the agent belongs to several",
                                               max_length=200)] = None,
) -> m.Upload:
    workspace_id = one_workspace(principal, workspace)
    content_type = request.headers.get("content-type", "")
    try:
        info = await receive_upload(request.stream(), content_type, workspace_id, gateway.upstream.upload_media)
    except InternalServerException as exc:  # Litestar's "client disconnected prematurely"
        raise InvalidRequest("the upload was interrupted") from exc
    except ClientException:
        raise  # 413 from Litestar's own body limit
    return m.Upload(upload_id=info.storage_id, mime_type=info.mime_type, size=info.size,
                    filename=info.filename or None, sha256=info.sha256)


@get("/api/media/{media_id:str}", tags=["media"], summary="A stored attachment, streamed",
     responses={200: ResponseSpec(data_container=bytes, media_type="application/octet-stream",
                                  description="The file, with its own Content-Type", generate_examples=False),
                **errors(404)})
async def get_media(gateway: GatewayDep, principal: PrincipalDep, media_id: FromPath[str]) -> Response[Any]:
    _, download = await gateway.locator.find(f"media:{media_id}", principal,
                                        lambda ws: gateway.upstream.open_media(ws, media_id))
    info = download.info
    mime = info.mime_type or "application/octet-stream"
    disposition = "inline" if mime.startswith(INLINE_PREFIXES) else "attachment"
    filename = info.filename or media_id
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(filename)}",
        # A stored file is never run as a page of this origin, whatever it contains.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600",
    }
    if info.size:
        headers["Content-Length"] = str(info.size)
    return Stream(download.chunks(), media_type=mime, headers=headers)
