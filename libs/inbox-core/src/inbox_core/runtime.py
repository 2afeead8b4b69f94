"""Running a service process: start its components, wait for SIGTERM/SIGINT, stop them in reverse.

A service's ``__main__`` builds the components of a role (``api``: the gRPC or HTTP server; ``worker``:
the Kafka consumers; ``all``: both, for development) and hands them to :func:`run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import uvicorn
from faststream.kafka import KafkaBroker

from inbox_core.grpc_server import GrpcServer

log = logging.getLogger("inbox.runtime")


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _QuietServer(uvicorn.Server):
    # The process runner owns signals; uvicorn must not install its own handlers.
    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


# How long an idle kept-alive connection stays open: longer than the load balancers' and proxies' in front
# (60 s is common), so that none reuses a connection just as the server closes it (the request then fails
# with a reset, or a 502 from the proxy). uvicorn's 5 s default did that to a client with 5 s of its own.
KEEP_ALIVE_S = 75


class HttpComponent:
    """A uvicorn server. ``send_buffer_bytes`` caps the kernel's send buffer of every connection (they
    inherit it from the listening socket): unset, Linux grows it to 4 MiB for a client that does not read,
    memory no process counts; a long-lived stream per agent makes that bound matter."""

    def __init__(self, name: str, app: Any, port: int, host: str = "0.0.0.0",
                 send_buffer_bytes: int | None = None) -> None:
        self.name = name
        self.host, self.port, self.send_buffer_bytes = host, port, send_buffer_bytes
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                lifespan="on", timeout_graceful_shutdown=10, timeout_keep_alive=KEEP_ALIVE_S)
        self.server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    def _listening_socket(self) -> socket.socket:
        # IPPROTO_TCP named, and TCP_NODELAY set (accepted connections inherit it): asyncio turns Nagle off
        # only on sockets whose proto says TCP, and a socket made with proto 0 kept it on. Each answer on a
        # kept-alive connection (headers and body written apart) then waited for the client's delayed ACK,
        # about 40 ms on every API request after a connection's first.
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes or 0)
        sock.bind((self.host, self.port))
        return sock

    async def start(self) -> None:
        sockets = [self._listening_socket()] if self.send_buffer_bytes else None
        self._task = asyncio.create_task(self.server.serve(sockets=sockets))
        while not self.server.started:
            if self._task.done():
                self._task.result()  # re-raise why it could not start
                raise RuntimeError(f"{self.name} stopped during start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


class BrokerComponent:
    def __init__(self, broker: KafkaBroker, name: str = "kafka") -> None:
        self.name = name
        self.broker = broker

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()


class GrpcComponent:
    def __init__(self, server: GrpcServer, name: str = "grpc") -> None:
        self.name = name
        self.server = server

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()


class TaskComponent:
    """A background loop (e.g. a purge) that is cancelled on stop."""

    def __init__(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self.factory = factory
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.factory(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class CallbackComponent:
    """Start/stop hooks, e.g. opening and closing a database client."""

    def __init__(self, name: str, start: Callable[[], Awaitable[None]] | None = None,
                 stop: Callable[[], Awaitable[None]] | None = None) -> None:
        self.name = name
        self._start = start
        self._stop = stop

    async def start(self) -> None:
        if self._start:
            await self._start()

    async def stop(self) -> None:
        if self._stop:
            await self._stop()


async def run(components: list[Component], stop: asyncio.Event | None = None) -> None:
    """Starts every component in order, waits for a stop signal, then stops them in reverse order."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list[Component] = []
    try:
        for component in components:
            await component.start()
            started.append(component)
            log.info("started %s", component.name)
        log.info("ready")
        await stop.wait()
        log.info("stopping")
    finally:
        for component in reversed(started):
            try:
                await asyncio.wait_for(component.stop(), timeout=30)
            except Exception:
                log.exception("error stopping %s", component.name)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
