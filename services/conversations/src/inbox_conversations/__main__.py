"""``python -m inbox_conversations [api|worker|all]``: see inbox_core.service.

``api``: the gRPC server and the outbox relay (it finishes what a request wrote but could not publish);
``worker``: the Kafka consumers and the waker of ended snoozes; ``all``: both.
"""

from datetime import timedelta

from inbox.conversations.v1 import conversations_pb2_grpc
from inbox_conversations.consumers import register
from inbox_conversations.outbox import Publisher
from inbox_conversations.presence_client import PresenceDirectory
from inbox_conversations.rpc import SERVICE_NAME, ConversationsRpc
from inbox_conversations.settings import ConversationsSettings
from inbox_conversations.store import ConversationsStore
from inbox_conversations.usecases.snoozes import SnoozeWaker
from inbox_conversations.usecases.team import TeamWork
from inbox_core.runtime import CallbackComponent, Component, TaskComponent
from inbox_core.service import entrypoint
from inbox_core.service_parts import Backends, grpc_component, runs_worker, serves_api
from inbox_core.settings import load


async def build(role: str) -> list[Component]:
    settings = load(ConversationsSettings)
    backends = Backends.connect(settings.inbox, "conversations")
    store = ConversationsStore(backends.database)
    publisher = Publisher(store, backends.broker)
    components: list[Component] = []
    if runs_worker(role):
        presence = PresenceDirectory(settings.presence_target)
        register(backends.broker, store, publisher, pending_ttl=timedelta(days=settings.pending_ttl_days),
                 online=presence)
        # First, so it is closed last: after the consumers that ask it have stopped with the broker.
        components.append(CallbackComponent("presence-client", stop=presence.close))
    components += backends.components(store.ensure_indexes)
    if serves_api(role):
        servicer = ConversationsRpc(store, publisher, publish_timeout_s=settings.publish_timeout_s)
        components.append(grpc_component(settings.grpc_port,
                                         conversations_pb2_grpc.add_ConversationsServiceServicer_to_server,
                                         servicer, SERVICE_NAME))
        grace = timedelta(seconds=settings.relay_grace_s)
        components.append(TaskComponent("outbox-relay",
                                        lambda: publisher.relay_forever(settings.relay_interval_s, grace)))
    if runs_worker(role):
        components.append(backends.consumer_lag())
        waker = SnoozeWaker(TeamWork(store.repos, publisher, settings.publish_timeout_s))
        components.append(TaskComponent("snooze-waker",
                                        lambda: waker.run_forever(settings.snooze_wake_interval_s)))
    components.append(backends.ops(settings.ops_port))
    return components


def main() -> None:
    entrypoint("conversations", build, roles=("api", "worker", "all"))


if __name__ == "__main__":
    main()
