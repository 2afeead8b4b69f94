"""OpenTelemetry setup: one tracer provider per process, OTLP export only when an endpoint is set.

Trace context crosses Kafka in message headers (FastStream's telemetry middleware, see kafka.py) and
gRPC in metadata (the OpenTelemetry gRPC interceptors, see grpc_server.py and grpc_client.py).
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None


def setup_telemetry(service: str, extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Installs the global tracer provider once; later calls return the same one."""
    global _provider
    if _provider is not None:
        if extra_processor is not None:
            _provider.add_span_processor(extra_processor)
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": f"inbox-{service}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def tracer_provider() -> TracerProvider | None:
    return _provider
