"""gRPC servicer of inbox.presence.v1.PresenceService; methods not written yet answer UNIMPLEMENTED."""

from faststream.kafka import KafkaBroker

from inbox.presence.v1 import presence_pb2_grpc
from inbox_presence.store import PresenceStore

SERVICE_NAME = "inbox.presence.v1.PresenceService"


class PresenceRpc(presence_pb2_grpc.PresenceServiceServicer):
    def __init__(self, store: PresenceStore, broker: KafkaBroker) -> None:
        self.store = store
        self.broker = broker
