"""Settings of the sandbox service: ``SANDBOX_*`` environment variables (and the shared ``INBOX_*``)."""

from inbox_core.service import ServiceSettings
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict


class SandboxSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    http_port: int = 8002
    # Where the simulated Meta posts webhooks, and the app secret it signs them with (ingest's).
    webhook_url: str = "http://127.0.0.1:8001/webhooks/whatsapp"
    meta_app_secret: SecretStr = Field(min_length=1)
