"""gRPC servicer of inbox.conversations.v1.ConversationsService; methods not written yet answer UNIMPLEMENTED."""

from faststream.kafka import KafkaBroker

from inbox.conversations.v1 import conversations_pb2_grpc
from inbox_conversations.store import ConversationsStore

SERVICE_NAME = "inbox.conversations.v1.ConversationsService"


class ConversationsRpc(conversations_pb2_grpc.ConversationsServiceServicer):
    def __init__(self, store: ConversationsStore, broker: KafkaBroker) -> None:
        self.store = store
        self.broker = broker
