"""Groups of settings several services share, mixed into a service's own settings class.

A service's class stays the one :class:`inbox_core.service.ServiceSettings` subclass of its module and
keeps its ``env_prefix``: a group's field ``relay_interval_s`` is ``CUSTOMERS_RELAY_INTERVAL_S`` in
customers and ``ORDERS_RELAY_INTERVAL_S`` in orders. The groups are plain models, not settings: a
service's own class alone reads the environment.

    class OrdersSettings(ServiceSettings, OutboxRelaySettings, RevisionRetentionSettings): ...
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class OutboxRelaySettings(BaseModel):
    """The outbox relay of a revisioned store (inbox_core.revisions): how often it looks for changes whose
    events were not published (a crash between the write and the publication, or Kafka down), and how old
    such a change must be, so that it does not race the writer that is publishing it right now."""

    relay_interval_s: float = Field(default=2.0, gt=0)
    relay_min_age_s: float = Field(default=10.0, ge=0)


class RevisionRetentionSettings(BaseModel):
    """Retention of revisions (each copies its whole document): a published revision older than
    ``revision_retention_days`` that is not its document's latest keeps only its id and version
    (inbox_core.revisions' compaction), checked every ``retention_interval_s``, at most ``retention_batch``
    a round (no TTL index: FerretDB has none)."""

    revision_retention_days: float = Field(default=7.0, gt=0)
    retention_interval_s: float = Field(default=300.0, gt=0)
    retention_batch: int = Field(default=500, gt=0)
