"""gRPC servicer of inbox.customers.v1.CustomersService; methods not written yet answer UNIMPLEMENTED."""

from faststream.kafka import KafkaBroker

from inbox.customers.v1 import customers_pb2_grpc
from inbox_customers.store import CustomersStore

SERVICE_NAME = "inbox.customers.v1.CustomersService"


class CustomersRpc(customers_pb2_grpc.CustomersServiceServicer):
    def __init__(self, store: CustomersStore, broker: KafkaBroker) -> None:
        self.store = store
        self.broker = broker
