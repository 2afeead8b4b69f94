"""Kafka consumers of the customers service (the ``worker`` role)."""

from faststream.kafka import KafkaBroker

from inbox_customers.store import CustomersStore

GROUP_ID = "inbox-customers"


def register(broker: KafkaBroker, store: CustomersStore) -> None:
    """Subscribes this service's handlers (consumer group ``inbox-customers``).

    Each handler is idempotent and commits after its effects."""
