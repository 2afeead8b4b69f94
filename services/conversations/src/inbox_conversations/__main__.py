"""``python -m inbox_conversations [api|worker|all]``: see inbox_core.service.

``api``: the gRPC server and the outbox relay (it finishes what a request wrote but could not publish);
``worker``: the Kafka consumers; ``all``: both.
"""

from datetime import timedelta

from inbox.conversations.v1 import conversations_pb2_grpc
from inbox_conversations.consumers import register
from inbox_conversations.outbox import Publisher
from inbox_conversations.rpc import SERVICE_NAME, ConversationsRpc
from inbox_conversations.settings import ConversationsSettings
from inbox_conversations.store import ConversationsStore
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker, report_lag
from inbox_core.mongo import make_client, ping, service_database
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


async def build(role: str) -> list[Component]:
    settings = load(ConversationsSettings)
    client = make_client(settings.inbox, "conversations")
    store = ConversationsStore(service_database(client, settings.inbox, "conversations"))
    broker = make_broker(settings.inbox, "conversations")
    publisher = Publisher(store, broker)
    if role in ("worker", "all"):
        register(broker, store, publisher, pending_ttl=timedelta(days=settings.pending_ttl_days))
    components: list[Component] = [
        CallbackComponent("database", start=store.ensure_indexes, stop=client.close),
        BrokerComponent(broker),
    ]
    if role in ("api", "all"):
        server = GrpcServer(settings.grpc_port)
        servicer = ConversationsRpc(store, publisher, publish_timeout_s=settings.publish_timeout_s)
        server.add(conversations_pb2_grpc.add_ConversationsServiceServicer_to_server, servicer, SERVICE_NAME)
        components.append(GrpcComponent(server))
        grace = timedelta(seconds=settings.relay_grace_s)
        components.append(TaskComponent("outbox-relay",
                                        lambda: publisher.relay_forever(settings.relay_interval_s, grace)))
    if role in ("worker", "all"):
        components.append(TaskComponent("consumer-lag", lambda: report_lag(broker)))

    async def kafka_ready() -> bool:
        return await broker.ping(timeout=2.0)

    async def database_ready() -> bool:
        return await ping(client)

    checks = {"database": database_ready, "kafka": kafka_ready}
    components.append(HttpComponent("ops", ops_app(checks), settings.ops_port))
    return components


def main() -> None:
    entrypoint("conversations", build, roles=("api", "worker", "all"))


if __name__ == "__main__":
    main()
