"""The parts of a service process that every service wires the same way; its ``__main__`` adds its own.

A role (``api``, ``worker`` or ``all``: see inbox_core.service) decides which parts a process runs:
:func:`serves_api` and :func:`runs_worker`. :class:`Backends` are the service's database and Kafka broker,
with the components that open and close them, the readiness checks on both and the ops server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import grpc
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker, report_lag
from inbox_core.mongo import Document, make_client, ping, service_database
from inbox_core.ops import ReadyCheck, ops_app
from inbox_core.runtime import (
    BrokerComponent,
    CallbackComponent,
    Component,
    GrpcComponent,
    HttpComponent,
    TaskComponent,
)
from inbox_core.service_settings import OutboxRelaySettings, RevisionRetentionSettings
from inbox_core.settings import InboxSettings


def serves_api(role: str) -> bool:
    """The role runs the requests' server (gRPC or HTTP)."""
    return role in ("api", "all")


def runs_worker(role: str) -> bool:
    """The role runs the Kafka consumers and the worker's loops."""
    return role in ("worker", "all")


@dataclass
class Backends:
    """A service's database client, its own database (``<prefix>_<service>``) and its Kafka broker."""

    client: AsyncMongoClient[Document]
    database: AsyncDatabase[Document]
    broker: KafkaBroker

    @classmethod
    def connect(cls, inbox: InboxSettings, service: str, *, metrics: bool = True) -> Backends:
        """The clients connect when their components start. ``metrics=False``: the broker reports to no
        Prometheus registry (several replicas in one process)."""
        client = make_client(inbox, service)
        broker = make_broker(inbox, service, registry=REGISTRY if metrics else None)
        return cls(client, service_database(client, inbox, service), broker)

    def components(self, start_database: Callable[[], Awaitable[None]]) -> list[Component]:
        """The database (``start_database`` prepares it, e.g. its indexes; stopping closes the client), then
        the broker: a process lists them first, so they start before and stop after everything using them."""
        return [CallbackComponent("database", start=start_database, stop=self.client.close),
                BrokerComponent(self.broker)]

    def checks(self) -> dict[str, ReadyCheck]:
        """Readiness: the database answers a ping and Kafka is reachable."""
        async def database_ready() -> bool:
            return await ping(self.client)

        async def kafka_ready() -> bool:
            return bool(await self.broker.ping(timeout=2.0))

        return {"database": database_ready, "kafka": kafka_ready}

    def ops(self, port: int) -> HttpComponent:
        """Liveness, readiness (:meth:`checks`) and Prometheus metrics over HTTP (``<SERVICE>_OPS_PORT``)."""
        return HttpComponent("ops", ops_app(self.checks()), port)

    def consumer_lag(self) -> TaskComponent:
        """Reports how far the broker's consumers are behind (a worker's metric)."""
        return TaskComponent("consumer-lag", lambda: report_lag(self.broker))


def grpc_server(port: int, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, full_name: str, *,
                options: Sequence[tuple[str, int | str]] = ()) -> GrpcServer:
    """A gRPC server of one service (with health and reflection, see inbox_core.grpc_server)."""
    server = GrpcServer(port, options=options)
    server.add(register, servicer, full_name)
    return server


def grpc_component(port: int, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, full_name: str, *,
                   options: Sequence[tuple[str, int | str]] = ()) -> GrpcComponent:
    return GrpcComponent(grpc_server(port, register, servicer, full_name, options=options))


class RevisionedStore(Protocol):
    """A store over inbox_core.revisions: it relays unpublished changes and compacts old revisions."""

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None: ...

    async def compact_forever(self, interval_s: float, retention: timedelta, batch: int) -> None: ...


def outbox_relay(store: RevisionedStore, settings: OutboxRelaySettings) -> TaskComponent:
    """Publishes the events of changes a crash (or Kafka being down) left unpublished."""
    return TaskComponent("outbox-relay", lambda: store.relay_forever(settings.relay_interval_s,
                                                                     settings.relay_min_age_s))


def revision_compaction(store: RevisionedStore, settings: RevisionRetentionSettings) -> TaskComponent:
    retention = timedelta(days=settings.revision_retention_days)
    return TaskComponent("revision-compaction", lambda: store.compact_forever(
        settings.retention_interval_s, retention, settings.retention_batch))
