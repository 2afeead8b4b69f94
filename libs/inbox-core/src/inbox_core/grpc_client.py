"""gRPC client channels with trace propagation (OpenTelemetry interceptors put context in metadata)."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors


def channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        target,
        interceptors=aio_client_interceptors(),  # type: ignore[no-untyped-call]
        # round_robin over every address the (headless) Service resolves to, not one pod per client.
        options=[("grpc.keepalive_time_ms", 30000), ("grpc.enable_retries", 1), ("grpc.lb_policy_name", "round_robin")],
    )
