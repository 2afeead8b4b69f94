"""Settings of the conversations service: ``CONVERSATIONS_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class ConversationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONVERSATIONS_", extra="ignore")

    grpc_port: int = 50051
    # Liveness, readiness and Prometheus metrics over HTTP.
    ops_port: int = 9051
