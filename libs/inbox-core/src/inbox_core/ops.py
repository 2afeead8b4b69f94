"""The operations endpoints every process serves: liveness, readiness and Prometheus metrics.

HTTP services mount :func:`ops_handlers` on their own app; gRPC servers and workers serve
:func:`ops_app` on their ops port (``<SERVICE>_OPS_PORT``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from litestar import Litestar, MediaType, Response, get
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

ReadyCheck = Callable[[], Awaitable[bool]]


def ops_handlers(checks: Mapping[str, ReadyCheck], registry: CollectorRegistry = REGISTRY) -> list[Any]:
    @get("/internal/alive", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
    def alive() -> dict[str, str]:
        return {"status": "alive"}

    @get("/internal/ready", media_type=MediaType.JSON, include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        names = list(checks)
        results = await asyncio.gather(*(_safe(checks[n]) for n in names))
        status = dict(zip(names, results, strict=True))
        ok = all(results)
        return Response({"status": "ready" if ok else "not_ready", "checks": status}, status_code=200 if ok else 503)

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [alive, ready, metrics]


async def _safe(check: ReadyCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout=3.0)
    except Exception:
        return False


def http_metrics(service: str) -> Any:
    """Middleware counting requests and timing them per route (``inbox_http_*``), for /metrics."""
    config = PrometheusConfig(app_name=f"inbox-{service}", prefix="inbox_http", group_path=True,
                              exclude=["/internal/", "/metrics"])
    return config.middleware


def http_tracing() -> Any:
    """Middleware opening a server span per request, continuing the caller's trace (W3C headers)."""
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    from inbox_core.telemetry import tracer_provider

    config = OpenTelemetryConfig(tracer_provider=tracer_provider(), exclude=["/internal/", "/metrics"],
                                 exclude_spans=["receive", "send"])
    return config.middleware


def ops_app(checks: Mapping[str, ReadyCheck], extra: Sequence[Any] = ()) -> Litestar:
    return Litestar(route_handlers=[*ops_handlers(checks), *extra], openapi_config=None)
