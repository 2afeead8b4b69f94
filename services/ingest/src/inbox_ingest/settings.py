"""Settings of the ingest service: ``INGEST_*`` environment variables (and the shared ``INBOX_*``)."""

from inbox_core.service import ServiceSettings
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    http_port: int = 8001
    # Meta's app secret keys the X-Hub-Signature-256 HMAC; the verify token answers the GET handshake.
    meta_app_secret: SecretStr = Field(min_length=1)
    meta_verify_token: SecretStr = Field(min_length=1)
    graph_api_base_url: str = "https://graph.facebook.com/v24.0"
    worker_ops_port: int = 9001
