"""The topic list: the one place that names every Kafka topic, its key and its partition count.

Local setup, the tests and the Kubernetes manifests (Strimzi KafkaTopic resources) are all made from
this list, so the code and the cluster cannot disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    description: str
    partitions: int = 12
    # A week: long enough to rebuild a service's database by replaying (docs/operations.md).
    retention_ms: int = 7 * 24 * 3600 * 1000

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


WHATSAPP_EVENTS = Topic(
    "whatsapp.events.v1", "{phone_number_id}:{wa_id}",
    "Everything Meta told us, normalised: messages, statuses, send results, template changes.",
)
WHATSAPP_COMMANDS = Topic(
    "whatsapp.commands.v1", "{phone_number_id}:{wa_id}",
    "What we ask Meta to do: send text/media/template/reaction, mark as read.",
)
CONVERSATIONS = Topic(
    "inbox.conversations.v1", "conversation id",
    "Conversation created/updated, message appended, status changed, note added, assigned, read.",
)
CUSTOMERS = Topic("inbox.customers.v1", "customer id", "Customer created/updated, stats changed.")
ORDERS = Topic("inbox.orders.v1", "order id", "Order created, stage changed, order updated.")
PRESENCE = Topic(
    "inbox.presence.v1", "conversation id (agent id for agent online/offline)",
    "Composing started/stopped, agent online/offline, viewing.",
    retention_ms=24 * 3600 * 1000,
)

TOPICS: tuple[Topic, ...] = (WHATSAPP_EVENTS, WHATSAPP_COMMANDS, CONVERSATIONS, CUSTOMERS, ORDERS, PRESENCE)
DLQ_PARTITIONS = 3


def all_topic_configs() -> list[tuple[str, int, dict[str, str]]]:
    """Every topic to create, dead-letter topics included: (name, partitions, config)."""
    out: list[tuple[str, int, dict[str, str]]] = []
    for t in TOPICS:
        out.append((t.name, t.partitions, {"retention.ms": str(t.retention_ms)}))
        # Dead letters are kept until someone looks at them.
        out.append((t.dlq, DLQ_PARTITIONS, {"retention.ms": "-1"}))
    return out


async def ensure_topics(bootstrap: str, extra: list[tuple[str, int]] | None = None) -> None:
    """Creates every listed topic that does not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = all_topic_configs() + [(name, n, {}) for name, n in (extra or [])]
        new = [
            NewTopic(name=name, num_partitions=n, replication_factor=1, topic_configs=cfg)
            for name, n, cfg in wanted
            if name not in existing
        ]
        if new:
            # Another process may create them between our list and our create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


def ensure_topics_sync(bootstrap: str) -> None:
    asyncio.run(ensure_topics(bootstrap))
