"""gRPC as a test sees it: one servicer behind a real server on a free loopback port, and a channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc

from inbox_core.grpc_server import GrpcServer
from inbox_testkit.ports import free_port


@asynccontextmanager
async def served_channel(register: Callable[[Any, grpc.aio.Server], None], servicer: Any,
                         service_name: str) -> AsyncIterator[grpc.aio.Channel]:
    """Serves ``servicer`` (``register`` is the generated ``add_…Servicer_to_server``) as the service does,
    interceptors included, and yields an insecure channel to it; the server stops after."""
    server = GrpcServer(free_port(), host="127.0.0.1")
    server.add(register, servicer, service_name)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield channel
    finally:
        await server.stop(grace=1)
