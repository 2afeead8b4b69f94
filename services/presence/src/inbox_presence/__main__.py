"""``python -m inbox_presence [api|all]``: see inbox_core.service."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from inbox.presence.v1 import presence_pb2_grpc
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker
from inbox_core.mongo import Document, make_client, ping, service_database
from inbox_core.ops import ops_app
from inbox_core.runtime import (
    BrokerComponent,
    CallbackComponent,
    Component,
    GrpcComponent,
    HttpComponent,
    TaskComponent,
)
from inbox_core.service import entrypoint
from inbox_core.settings import load
from inbox_presence.rpc import SERVICE_NAME, PresenceRpc
from inbox_presence.settings import PresenceSettings
from inbox_presence.store import PresenceStore
from inbox_presence.tracker import PresenceTracker, kafka_publisher


@dataclass
class Presence:
    """One replica's parts, built from explicit settings, so a test or a benchmark can run replicas
    in-process and reach the tracker (e.g. its purge_cycles) and the server's port."""

    settings: PresenceSettings
    client: AsyncMongoClient[Document]
    store: PresenceStore
    broker: KafkaBroker
    tracker: PresenceTracker
    server: GrpcServer | None  # None for a role without the API

    def components(self, *, ops: bool = True) -> list[Component]:
        """In start order. ``ops=False`` leaves out the HTTP ops server (liveness, readiness, metrics)."""
        parts: list[Component] = [
            CallbackComponent("database", start=self.store.ensure_indexes, stop=self.client.close),
            BrokerComponent(self.broker),
        ]
        if self.server is not None:
            parts.append(GrpcComponent(self.server))
            # Every replica purges; the atomic claim makes each expiry publish one "stopped".
            interval, batch = self.settings.purge_interval_s, self.settings.purge_batch
            parts.append(TaskComponent("purge", lambda: self.tracker.run_purge(interval, batch)))
        if ops:
            parts.append(HttpComponent("ops", ops_app(self._checks()), self.settings.ops_port))
        return parts

    def _checks(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        async def kafka_ready() -> bool:
            return bool(await self.broker.ping(timeout=2.0))

        async def database_ready() -> bool:
            return await ping(self.client)

        return {"database": database_ready, "kafka": kafka_ready}


def assemble(settings: PresenceSettings, role: str, *, metrics: bool = True) -> Presence:
    """``metrics=False``: the broker reports to no Prometheus registry (several replicas in one process)."""
    client = make_client(settings.inbox, "presence")
    store = PresenceStore(service_database(client, settings.inbox, "presence"))
    broker = make_broker(settings.inbox, "presence", registry=REGISTRY if metrics else None)
    tracker = PresenceTracker(store, kafka_publisher(broker), settings.ttls(),
                              relay_grace=timedelta(seconds=settings.relay_grace_s))
    server = None
    if role in ("api", "all"):
        server = GrpcServer(settings.grpc_port)
        server.add(presence_pb2_grpc.add_PresenceServiceServicer_to_server, PresenceRpc(tracker), SERVICE_NAME)
    return Presence(settings, client, store, broker, tracker, server)


async def build(role: str) -> list[Component]:
    return assemble(load(PresenceSettings), role).components()


def main() -> None:
    entrypoint("presence", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
