"""``python -m inbox_customers [api|worker|all]``: see inbox_core.service."""

from datetime import timedelta

from inbox.customers.v1 import customers_pb2_grpc
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker, report_lag
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
from inbox_customers.app import Customers
from inbox_customers.consumers import register
from inbox_customers.rpc import SERVICE_NAME, CustomersRpc
from inbox_customers.settings import CustomersSettings
from inbox_customers.store import CustomersRepository


async def build(role: str) -> list[Component]:
    settings = load(CustomersSettings)
    client = make_client(settings.inbox, "customers")
    broker = make_broker(settings.inbox, "customers")
    store = CustomersRepository(service_database(client, settings.inbox, "customers"), kafka_publish(broker),
                                relay_min_age_s=settings.relay_min_age_s)
    customers = Customers(store)
    if role in ("worker", "all"):
        register(broker, customers)
    components: list[Component] = [
        CallbackComponent("database", start=store.ensure_indexes, stop=client.close),
        BrokerComponent(broker),
        # Both roles write customers (agents' edits, consumed events): either may leave events to republish.
        TaskComponent("outbox-relay", lambda: store.relay_forever(settings.relay_interval_s, settings.relay_min_age_s)),
    ]
    if role in ("api", "all"):
        server = GrpcServer(settings.grpc_port)
        server.add(customers_pb2_grpc.add_CustomersServiceServicer_to_server, CustomersRpc(customers), SERVICE_NAME)
        components.append(GrpcComponent(server))
    if role in ("worker", "all"):
        components.append(TaskComponent("consumer-lag", lambda: report_lag(broker)))
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
    entrypoint("customers", build, roles=("api", "worker", "all"))


if __name__ == "__main__":
    main()
