"""Agents' uploads (``POST /api/uploads``): Meta's types and sizes, streamed to ingest as they arrive.

The multipart body is parsed as it streams in (python-multipart's push parser), and the ``file`` part's
bytes go to ingest's ``UploadMedia`` through a small bounded queue, so the gateway holds only a few
chunks of a 100 MB document at a time. The type is known from the part's headers before its first byte,
so its size limit applies from the first byte on (413 as soon as it is passed); the first bytes must
also look like the declared type (a PNG named ``.jpg`` or an HTML page named ``.png`` is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from inbox.ingest.v1 import ingest_pb2
from inbox_core.errors import InboxError, InvalidRequest, TooLarge, Unavailable

MB = 1024 * 1024

# Meta's media types and limits (WhatsApp Cloud API, "Supported media types"): kind and largest size.
MEDIA_RULES: dict[str, tuple[str, int]] = {
    "image/jpeg": ("image", 5 * MB),
    "image/png": ("image", 5 * MB),
    "video/mp4": ("video", 16 * MB),
    "video/3gpp": ("video", 16 * MB),
    "audio/aac": ("audio", 16 * MB),
    "audio/mp4": ("audio", 16 * MB),
    "audio/mpeg": ("audio", 16 * MB),
    "audio/amr": ("audio", 16 * MB),
    "audio/ogg": ("audio", 16 * MB),
    "text/plain": ("document", 100 * MB),
    "application/pdf": ("document", 100 * MB),
    "application/msword": ("document", 100 * MB),
    "application/vnd.ms-excel": ("document", 100 * MB),
    "application/vnd.ms-powerpoint": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("document", 100 * MB),
}
MAX_FILE_BYTES = max(limit for _, limit in MEDIA_RULES.values())
# The multipart envelope around the file (boundaries, headers, small fields) is allowed on top.
MAX_BODY_BYTES = MAX_FILE_BYTES + MB
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/mp3": "audio/mpeg",
           "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4", "video/3gp": "video/3gpp",
           "audio/x-aac": "audio/aac", "audio/opus": "audio/ogg"}
GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})
CHUNK = 256 * 1024  # bytes per message to ingest
SNIFF_BYTES = 16


class UnsupportedType(InboxError):
    code = "unsupported_media_type"
    http_status = 415


def media_kind(mime_type: str) -> str | None:
    rule = MEDIA_RULES.get(mime_type)
    return rule[0] if rule else None


def resolve_type(declared: str, filename: str | None) -> str:
    """The file's type: the part's Content-Type (without parameters), or from the file name when the
    browser sent none; UnsupportedType when it is not one Meta takes."""
    mime = parse_options_header(declared)[0].decode("latin-1").lower().strip()
    mime = ALIASES.get(mime, mime)
    if mime in GENERIC and filename:
        guessed = mimetypes.guess_type(filename, strict=False)[0] or ""
        mime = ALIASES.get(guessed, guessed)
    if mime not in MEDIA_RULES:
        raise UnsupportedType(f"files of type {mime or 'unknown'} cannot be sent on WhatsApp",
                              {"mime_type": mime, "allowed": sorted(MEDIA_RULES)})
    return mime


def _looks_like(mime: str, head: bytes) -> bool:
    """Whether the first bytes fit the type (magic numbers); types without one always fit."""
    if mime == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if mime == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if mime in ("video/mp4", "video/3gpp", "audio/mp4"):
        return head[4:8] == b"ftyp"
    if mime == "audio/ogg":
        return head.startswith(b"OggS")
    if mime == "audio/amr":
        return head.startswith(b"#!AMR")
    if mime == "audio/mpeg":
        return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    if mime == "audio/aac":
        return head.startswith(b"ADIF") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0)
    if mime == "application/pdf":
        return head.startswith(b"%PDF")
    if mime in ("application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"):
        return head.startswith(b"\xd0\xcf\x11\xe0")
    if mime.startswith("application/vnd.openxmlformats"):
        return head.startswith(b"PK\x03\x04")
    return True


def check_content(mime: str, head: bytes) -> None:
    if not _looks_like(mime, head):
        raise UnsupportedType(f"the file's content is not {mime}", {"mime_type": mime})


# --- multipart, pushed as it arrives ---------------------------------------------------------------------


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str


def boundary_of(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequest("send the file as multipart/form-data with a part named 'file'")
    return boundary


async def multipart_events(chunks: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[tuple[str, Any]]:
    """``("part", Part)`` when a part's headers are complete, then ``("data", bytes)`` for its content and
    ``("end", None)`` after it; the body ends after its last part."""
    events: list[tuple[str, Any]] = []
    headers: dict[str, str] = {}
    field, value = bytearray(), bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def on_header_end() -> None:
        # As latin-1, byte for byte: the options parser below encodes it back to latin-1 (a part name in
        # UTF-8 decoded as UTF-8 failed there: 500), and a filename is then read as UTF-8 from those bytes.
        headers[field.decode("latin-1").lower()] = value.decode("latin-1")
        field.clear()
        value.clear()

    def on_headers_finished() -> None:
        _, params = parse_options_header(headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        events.append(("part", Part(name=name, filename=filename.decode("utf-8", "replace") if filename else None,
                                    content_type=headers.get("content-type", ""))))
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", bytes(data[start:end])))

    def on_part_end() -> None:
        events.append(("end", None))

    callbacks: Any = {"on_header_field": on_header_field, "on_header_value": on_header_value,
                      "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
                      "on_part_data": on_part_data, "on_part_end": on_part_end}
    parser = MultipartParser(boundary, callbacks)
    async for chunk in chunks:
        if not chunk:
            continue
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidRequest("the multipart body is malformed") from exc
        for event in events:
            yield event
        events.clear()


# --- the upload ------------------------------------------------------------------------------------------

UploadCall = Callable[[AsyncIterator[ingest_pb2.UploadMediaRequest]], Awaitable[ingest_pb2.MediaInfo]]


class _Pipe:
    """Chunks from the HTTP body to the gRPC stream; bounded, and failing fast when the call has failed."""

    def __init__(self, call: UploadCall, info: ingest_pb2.MediaInfo) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
        self.task = asyncio.ensure_future(call(self._messages(info)))

    async def _messages(self, info: ingest_pb2.MediaInfo) -> AsyncIterator[ingest_pb2.UploadMediaRequest]:
        yield ingest_pb2.UploadMediaRequest(info=info)
        while (chunk := await self.queue.get()) is not None:
            yield ingest_pb2.UploadMediaRequest(chunk=chunk)

    async def put(self, chunk: bytes | None) -> None:
        put = asyncio.ensure_future(self.queue.put(chunk))
        done, _ = await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if put in done:
            return
        put.cancel()
        self.task.result()  # raises why the call ended
        raise Unavailable("the ingest service ended the upload early", {"service": "ingest"})

    async def finish(self) -> ingest_pb2.MediaInfo:
        await self.put(None)
        return await self.task

    async def abort(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


async def receive_upload(chunks: AsyncIterator[bytes], content_type: str, workspace_id: str,
                         call: UploadCall) -> ingest_pb2.MediaInfo:
    """Streams the ``file`` part of a multipart body to ``call`` (ingest's UploadMedia): its info."""
    boundary = boundary_of(content_type)
    pipe: _Pipe | None = None
    in_file = done = False
    mime = ""
    limit = size = 0
    head = bytearray()
    pending = bytearray()
    info = ingest_pb2.MediaInfo(workspace_id=workspace_id)
    try:
        async for kind, payload in multipart_events(chunks, boundary):
            if done:
                continue  # parts after the file are read and ignored
            if kind == "part":
                in_file = payload.name == "file"
                if in_file:
                    mime = resolve_type(payload.content_type, payload.filename)
                    limit = MEDIA_RULES[mime][1]
                    info.mime_type, info.filename = mime, (payload.filename or "")[:255]
            elif kind == "data" and in_file:
                size += len(payload)
                if size > limit:
                    raise TooLarge(f"{media_kind(mime)} files are limited to {limit // MB} MB",
                                   {"limit_bytes": limit, "mime_type": mime})
                if pipe is None:
                    head.extend(payload)
                    if len(head) < SNIFF_BYTES:
                        continue
                    check_content(mime, bytes(head))
                    pipe = _Pipe(call, info)
                    payload = bytes(head)
                pending.extend(payload)
                if len(pending) >= CHUNK:
                    await pipe.put(bytes(pending))
                    pending.clear()
            elif kind == "end" and in_file:
                in_file, done = False, True
        if not done:
            raise InvalidRequest("no file: send it in a multipart part named 'file'")
        if size == 0:
            raise InvalidRequest("the file is empty")
        if pipe is None:  # smaller than the sniffing window
            check_content(mime, bytes(head))
            pipe = _Pipe(call, info)
            pending.extend(head)
        if pending:
            await pipe.put(bytes(pending))
        return await pipe.finish()
    except BaseException:
        if pipe is not None:
            await pipe.abort()
        raise
