"""OpenTelemetry setup: one tracer provider per process, OTLP export only when an endpoint is set.

Spans are recorded only while something receives them (an exporter, or a processor a test adds): with
neither, every span is a non-recording one, which still has its trace and span ids (the logs carry them,
and they cross Kafka and gRPC as before) but costs no attributes, events or ending. Recording spans
nobody exported took about 5% of a worker's CPU under load (bench/sustained_load.py).

Trace context crosses Kafka in message headers (FastStream's telemetry middleware, see kafka.py) and
gRPC in metadata (the OpenTelemetry gRPC interceptors, see grpc_server.py and grpc_client.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

_provider: TracerProvider | None = None


class WhileReceived(Sampler):
    """``inner`` (the sampler the OTEL_TRACES_SAMPLER variables choose, parent-based always-on by default)
    once the provider has somewhere to send spans; until then, none is recorded."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self.received = False

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: TraceState | None = None,
                      ) -> SamplingResult:
        chosen = self.inner if self.received else ALWAYS_OFF
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"WhileReceived{{{self.inner.get_description()}}}"


def setup_telemetry(service: str, extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Installs the global tracer provider once; later calls return the same one."""
    global _provider
    if _provider is not None:
        if extra_processor is not None:
            _add(_provider, extra_processor)
        return _provider
    # The sampler the environment chooses, read the SDK's way (a provider that is never installed).
    chosen = TracerProvider(shutdown_on_exit=False).sampler
    provider = TracerProvider(resource=Resource.create({"service.name": f"inbox-{service}"}),
                              sampler=WhileReceived(chosen))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _add(provider, BatchSpanProcessor(OTLPSpanExporter()))
    if extra_processor is not None:
        _add(provider, extra_processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def _add(provider: TracerProvider, processor: SpanProcessor) -> None:
    provider.add_span_processor(processor)
    if isinstance(provider.sampler, WhileReceived):
        provider.sampler.received = True


def tracer_provider() -> TracerProvider | None:
    return _provider
