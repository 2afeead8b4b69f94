"""Ten parallel 100 MB uploads through the gateway: ingest's memory stays bounded, every file arrives intact.

Each upload is a multipart ``POST /api/uploads`` of a 100 MB document (Meta's largest), generated as it is
sent, so the test holds none of them whole either. The gateway streams the file part to ingest's
``UploadMedia`` (gRPC client stream) and ingest writes it into GridFS chunk by chunk. While they run, the
RSS of ingest's API process (and the gateway's) is sampled; the figure that matters is the peak beside
the 256 MiB ceiling (half the 512 Mi pod, which also serves Meta's webhook): holding the files, or
PyMongo's GridIn buffers (32 MiB per open upload stream), would be over 1 GiB or 300 MiB. Then every
file is downloaded back through ``GET /api/media/{id}`` (streamed from GridFS), in parallel too, and its
sha256 compared with what was sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fault_kit import FaultStack, Workspace

from inbox_testkit.processes import rss_kib

pytestmark = pytest.mark.timeout(900, func_only=True)

MiB = 1024 * 1024
UPLOADS = 10
FILE_BYTES = 100 * MiB  # Meta's limit for documents, exactly: allowed
PIECE = MiB  # what the client sends per write
RSS_CEILING_KIB = 256 * 1024
BOUNDARY = "fault-upload-boundary-7d1f"
T = TypeVar("T")


@dataclass
class Sent:
    upload_id: str
    sha256: str
    answered_sha256: str
    size: int


def document_bytes(seed: int) -> AsyncIterator[bytes]:
    """A 100 MB PDF-looking file, generated as it is read (and hashed by the caller)."""

    async def pieces() -> AsyncIterator[bytes]:
        rng = random.Random(seed)
        left = FILE_BYTES
        first = True
        while left:
            piece = rng.randbytes(min(PIECE, left))
            if first:
                piece = b"%PDF-1.7\n" + piece[9:]
                first = False
            left -= len(piece)
            yield piece
            await asyncio.sleep(0)

    return pieces()


async def upload(client: httpx.AsyncClient, url: str, token: str, seed: int) -> Sent:
    digest = hashlib.sha256()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big-{seed}.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for piece in document_bytes(seed):
            digest.update(piece)
            yield piece
        yield tail

    response = await client.post(f"{url}/api/uploads", content=body(), headers={
        "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(head) + FILE_BYTES + len(tail))})
    assert response.status_code == 201, response.text[:500]
    answer = response.json()
    return Sent(answer["upload_id"], digest.hexdigest(), answer["sha256"], int(answer["size"]))


async def download_sha256(client: httpx.AsyncClient, url: str, token: str, upload_id: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    async with client.stream("GET", f"{url}/api/media/{upload_id}",
                             headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 200, (await response.aread())[:500]
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Sampler:
    """Peak RSS of some processes, sampled every 100 ms while it runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: rss_kib(pid) for name, pid in pids.items()}
        self._running = True
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._running:
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_kib(pid))
            await asyncio.sleep(0.1)

    async def stop(self) -> dict[str, int]:
        self._running = False
        await self._task
        return self.peak


async def all_sampled(fault_stack: FaultStack, pids: dict[str, int], what: str,
                      calls: list[Coroutine[Any, Any, T]]) -> tuple[list[T], dict[str, int], float]:
    """Runs the calls at once while sampling the processes' RSS: their results, the peak RSS and the seconds
    they took. Any call that failed fails the test (after printing ingest's and the gateway's logs)."""
    sampler = Sampler(pids)
    started = time.monotonic()
    try:
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        peak = await sampler.stop()
    seconds = time.monotonic() - started
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"ingest's log:\n{fault_stack.processes['ingest'].output()}\n"
              f"gateway's log:\n{fault_stack.processes['gateway'].output()}")
    assert not failed, f"{len(failed)} of {len(calls)} {what} failed: {failed[:3]}"
    return [r for r in results if not isinstance(r, BaseException)], peak, seconds


async def test_ten_parallel_100_mb_uploads_keep_ingest_memory_bounded_and_arrive_intact(
    fault_stack: FaultStack, workspace: Workspace
) -> None:
    url = fault_stack.url("gateway")
    timeout = httpx.Timeout(60, read=600, write=600)
    async with httpx.AsyncClient(timeout=timeout) as client:
        login = await client.post(f"{url}/api/auth/login", json={"email": workspace.agent_email,
                                                                 "password": workspace.agent_password})
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        pids = {"ingest": fault_stack.pid("ingest"), "gateway": fault_stack.pid("gateway")}
        before = {name: rss_kib(pid) for name, pid in pids.items()}

        sent, upload_peak, upload_s = await all_sampled(
            fault_stack, pids, "uploads", [upload(client, url, token, seed) for seed in range(UPLOADS)])
        got, download_peak, download_s = await all_sampled(
            fault_stack, pids, "downloads", [download_sha256(client, url, token, s.upload_id) for s in sent])

    total_mib = UPLOADS * FILE_BYTES / MiB
    intact = sum(1 for s, (sha, size) in zip(sent, got, strict=True)
                 if s.sha256 == s.answered_sha256 == sha and s.size == size == FILE_BYTES)
    print(f"{UPLOADS} parallel uploads of {FILE_BYTES // MiB} MiB through the gateway: {upload_s:.1f} s, "
          f"{total_mib / upload_s:.1f} MiB/s; ingest RSS {before['ingest'] // 1024} MiB before, peak "
          f"{upload_peak['ingest'] // 1024} MiB (ceiling {RSS_CEILING_KIB // 1024} MiB); gateway RSS "
          f"{before['gateway'] // 1024} MiB before, peak {upload_peak['gateway'] // 1024} MiB")
    print(f"{UPLOADS} parallel downloads back: {download_s:.1f} s, {total_mib / download_s:.1f} MiB/s; ingest RSS "
          f"peak {download_peak['ingest'] // 1024} MiB; gateway RSS peak {download_peak['gateway'] // 1024} MiB")
    print(f"[uploads] sent {UPLOADS} files, found {intact} intact (sha256), difference {UPLOADS - intact}")
    assert intact == UPLOADS, [(s, g) for s, g in zip(sent, got, strict=True)]
    assert upload_peak["ingest"] < RSS_CEILING_KIB, "ingest's memory stayed under 256 MiB during the uploads"
    assert download_peak["ingest"] < RSS_CEILING_KIB, "and during the downloads"
