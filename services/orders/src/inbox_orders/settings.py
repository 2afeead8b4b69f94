"""Settings of the orders service: ``ORDERS_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings
from inbox_core.service_settings import OutboxRelaySettings, RevisionRetentionSettings


class OrdersSettings(ServiceSettings, OutboxRelaySettings, RevisionRetentionSettings):
    """Its ports; the outbox relay and the revisions' retention are inbox_core.service_settings' groups."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    grpc_port: int = 50053
    # Liveness, readiness and Prometheus metrics over HTTP.
    ops_port: int = 9053
