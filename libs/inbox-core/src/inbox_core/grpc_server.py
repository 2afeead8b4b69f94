"""A gRPC aio server with what every service needs: health, reflection, tracing, error mapping, and
a graceful stop (health turns NOT_SERVING first, so load balancers drain, then in-flight calls finish).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from aiokafka.errors import KafkaError, KafkaTimeoutError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from prometheus_client import Histogram

from inbox_core.errors import InboxError, TransientError, Unavailable
from inbox_core.mongo import database_unavailable

log = logging.getLogger("inbox.grpc")

ERROR_CODE_KEY = "inbox-error-code"
# An InboxError's details as JSON (bounded: trailing metadata shares the headers' size limit).
ERROR_DETAILS_KEY = "inbox-error-details"
MAX_DETAILS_BYTES = 4096

RPC_SECONDS = Histogram("inbox_rpc_seconds", "gRPC server call latency", ["method", "outcome"])


class _ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Turns InboxError into its status code (with the machine code in trailing metadata); anything
    else unexpected becomes INTERNAL with the details logged, never the exception text."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None or handler.stream_unary is not None:
            inner = handler.unary_unary or handler.stream_unary

            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                outcome = "ok"
                try:
                    return await inner(request, context)
                except Exception as exc:
                    outcome = exc.code if isinstance(exc, InboxError) else "error"
                    await _abort(context, exc, method)
                finally:
                    RPC_SECONDS.labels(method, outcome).observe(time.perf_counter() - started)

            make = (grpc.unary_unary_rpc_method_handler if handler.unary_unary is not None
                    else grpc.stream_unary_rpc_method_handler)
            return make(call, **kwargs)
        inner_stream = handler.unary_stream or handler.stream_stream

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in inner_stream(request, context):
                    yield item
            except Exception as exc:
                await _abort(context, exc, method)

        make_stream = (grpc.unary_stream_rpc_method_handler if handler.unary_stream is not None
                       else grpc.stream_stream_rpc_method_handler)
        return make_stream(stream, **kwargs)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if isinstance(exc, InboxError):
        trailing: list[tuple[str, str]] = [(ERROR_CODE_KEY, exc.code)]
        details = json.dumps(exc.details, default=str, separators=(",", ":")) if exc.details else ""
        if details and len(details) <= MAX_DETAILS_BYTES:  # what the caller may show (who replied, which field)
            trailing.append((ERROR_DETAILS_KEY, details))
        await context.abort(exc.grpc_status, exc.message, trailing_metadata=tuple(trailing))
    if dependency_unavailable(exc):
        # The database or Kafka is away: the caller may retry (the gateway answers 503, not 500).
        log.warning("%s: a dependency is unavailable: %r", method, exc, exc_info=exc)
        await context.abort(Unavailable.grpc_status, "a service this one needs is unavailable; try again",
                            trailing_metadata=((ERROR_CODE_KEY, Unavailable.code),))
    log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def dependency_unavailable(exc: BaseException) -> bool:
    """The database or Kafka cannot be reached (or did not answer in time): a retry may succeed. Other
    Kafka errors (a record too large, no authorisation, ...) are bugs, not outages."""
    if database_unavailable(exc):
        return True
    if isinstance(exc, TransientError | ConnectionError | TimeoutError | KafkaTimeoutError):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


class GrpcServer:
    def __init__(self, port: int, host: str = "0.0.0.0", *,
                 options: Sequence[tuple[str, int | str]] = ()) -> None:
        """``options``: further gRPC channel arguments of the server (e.g. flow control of a streaming service)."""
        self.address = f"{host}:{port}"
        self.server = grpc.aio.server(
            interceptors=[aio_server_interceptor(), _ErrorInterceptor()],  # type: ignore[no-untyped-call]
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 8 * 1024 * 1024), *options],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._names: list[str] = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        self.port = 0

    def add(self, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, full_name: str) -> None:
        register(servicer, self.server)
        self._names.append(full_name)

    async def start(self) -> None:
        reflection.enable_server_reflection([*self._names, reflection.SERVICE_NAME], self.server)
        self.port = self.server.add_insecure_port(self.address)
        await self.server.start()
        for name in ["", *self._names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC serving on %s", self.address)

    async def stop(self, grace: float = 10.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
