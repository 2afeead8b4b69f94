"""``python -m inbox_presence [api|all]``: see inbox_core.service."""

from dataclasses import dataclass
from datetime import timedelta

from faststream.kafka import KafkaBroker

from inbox.presence.v1 import presence_pb2_grpc
from inbox_core.grpc_server import GrpcServer
from inbox_core.runtime import Component, GrpcComponent, TaskComponent
from inbox_core.service import entrypoint
from inbox_core.service_parts import Backends, grpc_server, serves_api
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
    backends: Backends
    store: PresenceStore
    tracker: PresenceTracker
    server: GrpcServer | None  # None for a role without the API

    @property
    def broker(self) -> KafkaBroker:
        return self.backends.broker

    def components(self, *, ops: bool = True) -> list[Component]:
        """In start order. ``ops=False`` leaves out the HTTP ops server (liveness, readiness, metrics)."""
        parts = self.backends.components(self.store.ensure_indexes)
        if self.server is not None:
            parts.append(GrpcComponent(self.server))
            # Every replica purges; the atomic claim makes each expiry publish one "stopped".
            interval, batch = self.settings.purge_interval_s, self.settings.purge_batch
            parts.append(TaskComponent("purge", lambda: self.tracker.run_purge(interval, batch)))
        if ops:
            parts.append(self.backends.ops(self.settings.ops_port))
        return parts


def assemble(settings: PresenceSettings, role: str, *, metrics: bool = True) -> Presence:
    """``metrics=False``: the broker reports to no Prometheus registry (several replicas in one process)."""
    backends = Backends.connect(settings.inbox, "presence", metrics=metrics)
    store = PresenceStore(backends.database)
    tracker = PresenceTracker(store, kafka_publisher(backends.broker), settings.ttls(),
                              relay_grace=timedelta(seconds=settings.relay_grace_s))
    server = None
    if serves_api(role):
        server = grpc_server(settings.grpc_port, presence_pb2_grpc.add_PresenceServiceServicer_to_server,
                             PresenceRpc(tracker), SERVICE_NAME)
    return Presence(settings, backends, store, tracker, server)


async def build(role: str) -> list[Component]:
    return assemble(load(PresenceSettings), role).components()


def main() -> None:
    entrypoint("presence", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
