"""The HTTP server's own listening socket: its send buffer cap (a client that never reads holds little before
the writes block), and Nagle off on the connections it accepts."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from inbox_core.runtime import HttpComponent
from inbox_testkit.ports import free_port

CHUNK = b"x" * 16384


async def bytes_taken_by_a_client_that_never_reads(send_buffer_bytes: int | None) -> int:
    """Streams to a client that never reads; returns how much the app could write before a write blocked."""
    written = 0
    blocked = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal written
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            try:
                await asyncio.wait_for(send({"type": "http.response.body", "body": CHUNK, "more_body": True}), 1.0)
            except TimeoutError:
                blocked.set()
                return
            written += len(CHUNK)

    port = free_port()
    server = HttpComponent("http", app, port, host="127.0.0.1", send_buffer_bytes=send_buffer_bytes)
    await server.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", port))
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(blocked.wait(), 30)
        return written
    finally:
        client.close()
        await server.stop()


async def test_a_capped_send_buffer_bounds_what_a_silent_client_holds() -> None:
    capped = await bytes_taken_by_a_client_that_never_reads(32 * 1024)
    uncapped = await bytes_taken_by_a_client_that_never_reads(None)
    print(f"written before the first blocked write: capped {capped // 1024} KiB, kernel default {uncapped // 1024} KiB")
    # uvicorn buffers up to 64 KiB before it pauses; the kernel then holds at most twice the cap.
    assert capped <= 64 * 1024 + 2 * 32 * 1024 + 2 * len(CHUNK) + 64 * 1024
    assert uncapped > 4 * capped


async def test_connections_on_the_capped_socket_have_nagle_off() -> None:
    """Nagle on made every answer on a kept-alive connection wait for the client's delayed ACK (~40 ms)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    server = HttpComponent("http", app, port, host="127.0.0.1", send_buffer_bytes=32 * 1024)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 10)).startswith(b"HTTP/1.1 200")
        accepted = [connection.transport.get_extra_info("socket")
                    for connection in server.server.server_state.connections]
        assert accepted, "the server holds the open connection"
        assert all(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for sock in accepted)
    finally:
        writer.close()
        await server.stop()
