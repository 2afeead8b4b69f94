"""``python -m inbox_orders [api|all]``: see inbox_core.service."""

from inbox.orders.v1 import orders_pb2_grpc
from inbox_core.outbox import kafka_publish
from inbox_core.runtime import Component
from inbox_core.service import entrypoint
from inbox_core.service_parts import Backends, grpc_component, outbox_relay, revision_compaction, serves_api
from inbox_core.settings import load
from inbox_orders.app import Orders
from inbox_orders.rpc import SERVICE_NAME, OrdersRpc
from inbox_orders.settings import OrdersSettings
from inbox_orders.store import OrdersRepository


async def build(role: str) -> list[Component]:
    settings = load(OrdersSettings)
    backends = Backends.connect(settings.inbox, "orders")
    store = OrdersRepository(backends.database, kafka_publish(backends.broker),
                             relay_min_age_s=settings.relay_min_age_s)
    components: list[Component] = [*backends.components(store.ensure_indexes), outbox_relay(store, settings)]
    if serves_api(role):
        components += [grpc_component(settings.grpc_port, orders_pb2_grpc.add_OrdersServiceServicer_to_server,
                                      OrdersRpc(Orders(store)), SERVICE_NAME),
                       revision_compaction(store, settings)]
    components.append(backends.ops(settings.ops_port))
    return components


def main() -> None:
    entrypoint("orders", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
