"""Settings of the gateway service: ``GATEWAY_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    http_port: int = 8000
    # Signs session tokens. No default: a deployment must set its own (the dev value is in .env.example).
    jwt_secret: SecretStr = Field(min_length=16)
    conversations_target: str = "127.0.0.1:50051"
    customers_target: str = "127.0.0.1:50052"
    orders_target: str = "127.0.0.1:50053"
    presence_target: str = "127.0.0.1:50054"
