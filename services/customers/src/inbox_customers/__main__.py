"""``python -m inbox_customers [api|worker|all]``: see inbox_core.service."""

from inbox.customers.v1 import customers_pb2_grpc
from inbox_core.outbox import kafka_publish
from inbox_core.runtime import Component
from inbox_core.service import entrypoint
from inbox_core.service_parts import (
    Backends,
    grpc_component,
    outbox_relay,
    revision_compaction,
    runs_worker,
    serves_api,
)
from inbox_core.settings import load
from inbox_customers.app import Customers
from inbox_customers.consumers import register
from inbox_customers.rpc import SERVICE_NAME, CustomersRpc
from inbox_customers.settings import CustomersSettings
from inbox_customers.store import CustomersRepository


async def build(role: str) -> list[Component]:
    settings = load(CustomersSettings)
    backends = Backends.connect(settings.inbox, "customers")
    store = CustomersRepository(backends.database, kafka_publish(backends.broker),
                                relay_min_age_s=settings.relay_min_age_s)
    customers = Customers(store)
    if runs_worker(role):
        register(backends.broker, customers)
    # Both roles write customers (agents' edits, consumed events): either may leave events to republish.
    components: list[Component] = [*backends.components(store.ensure_indexes), outbox_relay(store, settings)]
    if serves_api(role):
        components.append(grpc_component(settings.grpc_port, customers_pb2_grpc.add_CustomersServiceServicer_to_server,
                                         CustomersRpc(customers), SERVICE_NAME))
    if runs_worker(role):
        components += [backends.consumer_lag(), revision_compaction(store, settings)]
    components.append(backends.ops(settings.ops_port))
    return components


def main() -> None:
    entrypoint("customers", build, roles=("api", "worker", "all"))


if __name__ == "__main__":
    main()
