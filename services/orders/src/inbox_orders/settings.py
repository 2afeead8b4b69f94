"""Settings of the orders service: ``ORDERS_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    grpc_port: int = 50053
    # Liveness, readiness and Prometheus metrics over HTTP.
    ops_port: int = 9053
