"""Settings of the customers service: ``CUSTOMERS_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class CustomersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMERS_", extra="ignore")

    grpc_port: int = 50052
    # Liveness, readiness and Prometheus metrics over HTTP.
    ops_port: int = 9052
    # The outbox relay: how often it looks for changes whose events were not published (a crash between
    # the write and the publication, or Kafka down), and how old such a change must be, so that it does
    # not race the writer that is publishing it right now.
    relay_interval_s: float = Field(default=2.0, gt=0)
    relay_min_age_s: float = Field(default=10.0, ge=0)
    # Retention of revisions (a customer's revision copies all of its orders): a published revision older than this
    # that is not its document's latest keeps only its id and version (inbox_core.revisions' compaction),
    # checked every retention_interval_s, at most retention_batch a round (no TTL index: FerretDB has none).
    revision_retention_days: float = Field(default=7.0, gt=0)
    retention_interval_s: float = Field(default=300.0, gt=0)
    retention_batch: int = Field(default=500, gt=0)
