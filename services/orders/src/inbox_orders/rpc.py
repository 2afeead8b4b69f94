"""gRPC servicer of inbox.orders.v1.OrdersService; methods not written yet answer UNIMPLEMENTED."""

from faststream.kafka import KafkaBroker

from inbox.orders.v1 import orders_pb2_grpc
from inbox_orders.store import OrdersStore

SERVICE_NAME = "inbox.orders.v1.OrdersService"


class OrdersRpc(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, store: OrdersStore, broker: KafkaBroker) -> None:
        self.store = store
        self.broker = broker
