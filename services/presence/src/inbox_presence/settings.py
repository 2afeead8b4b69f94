"""Settings of the presence service: ``PRESENCE_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class PresenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRESENCE_", extra="ignore")

    grpc_port: int = 50054
    # Liveness, readiness and Prometheus metrics over HTTP.
    ops_port: int = 9054
