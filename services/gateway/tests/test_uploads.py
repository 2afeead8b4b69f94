"""Uploads and media through a real ingest gRPC server in-process (IngestRpc + MediaStore on the test
database): Meta's types and sizes, streaming in both directions, and files only for their workspace."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_testkit import FAST_PASSWORDS, Server, Services, gateway_settings, login, make_team

from inbox.ingest.v1 import ingest_pb2
from inbox_core.errors import InvalidRequest, TooLarge
from inbox_core.settings import InboxSettings
from inbox_gateway.gateway import Gateway
from inbox_gateway.uploads import MB, UnsupportedType, receive_upload, resolve_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PDF = b"%PDF-1.7\n" + b"\x00" * 100


# --- the parts, without servers -----------------------------------------------------------------------------


def test_types() -> None:
    assert resolve_type("image/png", "a.png") == "image/png"
    assert resolve_type("image/jpg", None) == "image/jpeg"
    assert resolve_type("audio/ogg; codecs=opus", "v.ogg") == "audio/ogg"
    assert resolve_type("application/octet-stream", "report.pdf") == "application/pdf"
    for declared, name in [("image/gif", "a.gif"), ("text/html", "x.html"), ("image/webp", None),
                           ("application/octet-stream", "run.exe"), ("", None)]:
        with pytest.raises(UnsupportedType):
            resolve_type(declared, name)


def multipart(parts: list[tuple[str, str | None, str, bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def chunked(body: bytes, size: int = 7000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


class FakeIngest:
    def __init__(self) -> None:
        self.messages: list[ingest_pb2.UploadMediaRequest] = []
        self.peak_chunk = 0

    async def __call__(self, parts: AsyncIterator[ingest_pb2.UploadMediaRequest]) -> ingest_pb2.MediaInfo:
        data = b""
        async for part in parts:
            self.messages.append(part)
            if part.HasField("chunk"):
                data += part.chunk
                self.peak_chunk = max(self.peak_chunk, len(part.chunk))
        info = self.messages[0].info
        return ingest_pb2.MediaInfo(storage_id="up-1", workspace_id=info.workspace_id, mime_type=info.mime_type,
                             filename=info.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest())


async def test_the_file_part_streams_in_chunks_with_its_info_first() -> None:
    data = b"%PDF" + os.urandom(1_000_000)
    body = multipart([("note", None, "", b"ignored"), ("file", "r.pdf", "application/pdf", data),
                      ("after", None, "", b"ignored too")])
    ingest = FakeIngest()
    info = await receive_upload(chunked(body), "multipart/form-data; boundary=b0undary", "ws_1", ingest)
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    first = ingest.messages[0]
    assert first.info.mime_type == "application/pdf" and first.info.workspace_id == "ws_1"
    assert first.info.filename == "r.pdf"
    assert len(ingest.messages) > 1 and ingest.peak_chunk <= 512 * 1024


async def test_limits_and_content_are_checked_before_or_while_streaming() -> None:
    boundary = "multipart/form-data; boundary=b0undary"
    too_big = multipart([("file", "big.png", "image/png", PNG + b"\x00" * (5 * MB))])
    ingest = FakeIngest()
    with pytest.raises(TooLarge):
        await receive_upload(chunked(too_big, 64 * 1024), boundary, "ws_1", ingest)
    lying = multipart([("file", "x.png", "image/png", b"<html><script>alert(1)</script></html>")])
    with pytest.raises(UnsupportedType):
        await receive_upload(chunked(lying), boundary, "ws_1", FakeIngest())
    with pytest.raises(InvalidRequest):
        await receive_upload(chunked(multipart([("other", None, "", b"x")])), boundary, "ws_1", FakeIngest())
    with pytest.raises(InvalidRequest):
        await receive_upload(chunked(multipart([("file", "e.pdf", "application/pdf", b"")])), boundary, "ws_1",
                             FakeIngest())
    with pytest.raises(InvalidRequest):
        await receive_upload(chunked(b"{}"), "application/json", "ws_1", FakeIngest())


async def test_part_names_and_filenames_beyond_latin_1_are_read_not_a_500() -> None:
    """A part named in UTF-8 outside latin-1 (schemathesis found one: the options parser failed, a 500)."""
    data = b"%PDF" + os.urandom(2000)
    body = multipart([("\U000e2502 \u00e9t\u00e9", None, "", b"{}"), ("file", "r\u00e9sum\u00e9 \u6587.pdf",
                                                                         "application/pdf", data)])
    ingest = FakeIngest()
    info = await receive_upload(chunked(body), "multipart/form-data; boundary=b0undary", "ws_1", ingest)
    assert info.size == len(data) and ingest.messages[0].info.filename == "r\u00e9sum\u00e9 \u6587.pdf"


# --- through the gateway to a real ingest --------------------------------------------------------------------


async def test_upload_and_download_through_ingest(inbox_settings: InboxSettings, mongo_client: Any,
                                                  services: Services) -> None:
    gw = Gateway(gateway_settings(inbox_settings, **services.targets()), client=mongo_client,
                 passwords=FAST_PASSWORDS, stream=False)
    ours, theirs = await make_team(gw, "Ours"), await make_team(gw, "Theirs")
    async with Server(gw) as server, server.client(await login(server, ours.agent)) as client, \
            server.client(await login(server, theirs.agent)) as other:
        png = PNG + os.urandom(300_000)
        response = await client.post("/api/uploads", files={"file": ("photo.png", png, "image/png")})
        assert response.status_code == 201, response.text
        upload = response.json()
        assert upload["mime_type"] == "image/png" and upload["size"] == len(png)
        assert upload["sha256"] == hashlib.sha256(png).hexdigest() and upload["filename"] == "photo.png"
        stored = await services.media.info(upload["upload_id"])
        assert stored is not None and stored.metadata["workspace_id"] == ours.workspace_id

        media = await client.get(f"/api/media/{upload['upload_id']}")
        assert media.status_code == 200 and media.content == png
        assert media.headers["content-type"] == "image/png"
        assert media.headers["x-content-type-options"] == "nosniff"
        assert media.headers["content-disposition"].startswith("inline")
        # Another workspace's agent cannot read it, nor send it.
        assert (await other.get(f"/api/media/{upload['upload_id']}")).status_code == 404
        assert (await client.get("/api/media/up-nothing-here")).status_code == 404

        pdf = PDF + os.urandom(6 * MB)  # larger than an image may be: fine for a document
        started = time.monotonic()
        response = await client.post("/api/uploads", files={"file": ("r.pdf", pdf, "application/octet-stream")})
        assert response.status_code == 201, response.text
        assert response.json()["mime_type"] == "application/pdf" and response.json()["size"] == len(pdf)
        document = await client.get(f"/api/media/{response.json()['upload_id']}")
        assert document.content == pdf and document.headers["content-disposition"].startswith("attachment")
        assert time.monotonic() - started < 30

        big = JPEG + b"\x00" * (5 * MB)
        too_big = await client.post("/api/uploads", files={"file": ("big.jpg", big, "image/jpeg")})
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
        gif = await client.post("/api/uploads", files={"file": ("a.gif", b"GIF89a" + b"\x00" * 50, "image/gif")})
        assert gif.status_code == 415 and gif.json()["error"]["code"] == "unsupported_media_type"
        no_file = await client.post("/api/uploads", files={"other": ("a.png", PNG, "image/png")})
        assert no_file.status_code == 400 and no_file.json()["error"]["code"] == "invalid_request"
        not_multipart = await client.post("/api/uploads", json={"file": "x"})
        assert not_multipart.status_code == 400
        assert (await client.post(f"/api/uploads?workspace={theirs.workspace_id}",
                                  files={"file": ("p.png", PNG, "image/png")})).status_code == 404
