"""``python -m inbox_presence [api|all]``: see inbox_core.service."""

from inbox.presence.v1 import presence_pb2_grpc
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker
from inbox_core.mongo import make_client, ping, service_database
from inbox_core.ops import ops_app
from inbox_core.runtime import BrokerComponent, CallbackComponent, Component, GrpcComponent, HttpComponent
from inbox_core.service import entrypoint
from inbox_core.settings import load
from inbox_presence.rpc import SERVICE_NAME, PresenceRpc
from inbox_presence.settings import PresenceSettings
from inbox_presence.store import PresenceStore


async def build(role: str) -> list[Component]:
    settings = load(PresenceSettings)
    client = make_client(settings.inbox, "presence")
    store = PresenceStore(service_database(client, settings.inbox, "presence"))
    broker = make_broker(settings.inbox, "presence")
    components: list[Component] = [
        CallbackComponent("database", start=store.ensure_indexes, stop=client.close),
        BrokerComponent(broker),
    ]
    if role in ("api", "all"):
        server = GrpcServer(settings.grpc_port)
        server.add(presence_pb2_grpc.add_PresenceServiceServicer_to_server, PresenceRpc(store, broker), SERVICE_NAME)  # type: ignore[abstract]  # RPCs still UNIMPLEMENTED
        components.append(GrpcComponent(server))

    async def kafka_ready() -> bool:
        return await broker.ping(timeout=2.0)

    async def database_ready() -> bool:
        return await ping(client)

    checks = {"database": database_ready, "kafka": kafka_ready}
    components.append(HttpComponent("ops", ops_app(checks), settings.ops_port))
    return components


def main() -> None:
    entrypoint("presence", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
