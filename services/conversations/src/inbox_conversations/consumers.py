"""Kafka consumers of the conversations service (the ``worker`` role)."""

from faststream.kafka import KafkaBroker

from inbox_conversations.store import ConversationsStore

GROUP_ID = "inbox-conversations"


def register(broker: KafkaBroker, store: ConversationsStore) -> None:
    """Subscribes this service's handlers (consumer group ``inbox-conversations``).

    Each handler is idempotent and commits after its effects."""
