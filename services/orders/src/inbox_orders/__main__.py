"""``python -m inbox_orders [api|all]``: see inbox_core.service."""

from datetime import timedelta

from inbox.orders.v1 import orders_pb2_grpc
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker
from inbox_core.mongo import make_client, ping, service_database
from inbox_core.ops import ops_app
from inbox_core.outbox import kafka_publish
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
from inbox_orders.app import Orders
from inbox_orders.rpc import SERVICE_NAME, OrdersRpc
from inbox_orders.settings import OrdersSettings
from inbox_orders.store import OrdersRepository


async def build(role: str) -> list[Component]:
    settings = load(OrdersSettings)
    client = make_client(settings.inbox, "orders")
    broker = make_broker(settings.inbox, "orders")
    store = OrdersRepository(service_database(client, settings.inbox, "orders"), kafka_publish(broker),
                             relay_min_age_s=settings.relay_min_age_s)
    components: list[Component] = [
        CallbackComponent("database", start=store.ensure_indexes, stop=client.close),
        BrokerComponent(broker),
        # Publishes the events of changes a crash (or Kafka being down) left unpublished.
        TaskComponent("outbox-relay", lambda: store.relay_forever(settings.relay_interval_s, settings.relay_min_age_s)),
    ]
    if role in ("api", "all"):
        server = GrpcServer(settings.grpc_port)
        server.add(orders_pb2_grpc.add_OrdersServiceServicer_to_server, OrdersRpc(Orders(store)), SERVICE_NAME)
        components.append(GrpcComponent(server))
        retention = timedelta(days=settings.revision_retention_days)
        components.append(TaskComponent("revision-compaction", lambda: store.compact_forever(
            settings.retention_interval_s, retention, settings.retention_batch)))

    async def kafka_ready() -> bool:
        return await broker.ping(timeout=2.0)

    async def database_ready() -> bool:
        return await ping(client)

    checks = {"database": database_ready, "kafka": kafka_ready}
    components.append(HttpComponent("ops", ops_app(checks), settings.ops_port))
    return components


def main() -> None:
    entrypoint("orders", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
