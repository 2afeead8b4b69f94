"""Settings of the sandbox service: ``SANDBOX_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class NumberConfig(BaseModel):
    """A business phone number the sandbox serves (``SANDBOX_NUMBERS`` is a JSON list of these)."""

    phone_number_id: str = Field(min_length=1, pattern=r"^[0-9]+$")
    display_phone_number: str = Field(min_length=1, pattern=r"^[0-9]+$")
    waba_id: str = Field(min_length=1, pattern=r"^[0-9]+$")
    verified_name: str = "Sandbox Store"
    # A token accepted for this number only, on top of SANDBOX_ACCESS_TOKEN.
    access_token: str | None = None


# The first number is the one in Meta's own webhook examples (tests/fixtures/meta-webhooks), so those
# samples replayed in development land on a connected number.
DEFAULT_NUMBERS = [
    NumberConfig(phone_number_id="106540352242922", display_phone_number="15550783881",
                 waba_id="102290129340398", verified_name="Sandbox Store"),
    NumberConfig(phone_number_id="117650463353033", display_phone_number="15550783882",
                 waba_id="213301230451409", verified_name="Sandbox Outlet"),
]


class SandboxSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    http_port: int = 8002
    # Where the simulated Meta posts webhooks, and the app secret it signs them with (ingest's).
    webhook_url: str = "http://127.0.0.1:8001/webhooks/whatsapp"
    meta_app_secret: SecretStr = Field(min_length=1)
    # The Graph API bearer token accepted for every number; unset, only per-number tokens are (from
    # SANDBOX_NUMBERS or POST /sandbox/numbers).
    access_token: SecretStr | None = None
    numbers: list[NumberConfig] = Field(default_factory=lambda: [n.model_copy() for n in DEFAULT_NUMBERS])
    # Pauses before the sent, delivered and read status webhooks of a send (each after the previous).
    status_delays_ms: tuple[int, int, int] = (50, 100, 200)
    # Whether the simulated customer reads what the business sends (the read status webhook).
    auto_read: bool = True
    # Attempts per outgoing webhook (Meta keeps retrying for days; the sandbox gives up sooner).
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # Lifetime of a media download URL (Meta: 5 minutes).
    media_url_ttl_s: int = Field(default=300, gt=0)
    # Base of the media URLs the sandbox hands out; by default the scheme and host a request came in on.
    public_url: str | None = None
    # How many Graph API requests and webhook deliveries are kept for inspection (oldest dropped first).
    history_limit: int = Field(default=5000, ge=1)
