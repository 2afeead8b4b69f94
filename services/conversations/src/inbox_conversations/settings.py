"""Settings of the conversations service: ``CONVERSATIONS_*`` environment variables (and the shared ``INBOX_*``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class ConversationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONVERSATIONS_", extra="ignore")

    grpc_port: int = 50051
    # Liveness, readiness and Prometheus metrics over HTTP.
    ops_port: int = 9051
    # The outbox relay: how often it looks for events a request wrote but could not publish, and how
    # old such a leftover must be before the relay takes it (the request itself is normally faster).
    relay_interval_s: float = Field(default=2.0, gt=0)
    relay_grace_s: float = Field(default=5.0, ge=0)
    # How long a request waits for its own publish before leaving it to the relay.
    publish_timeout_s: float = Field(default=3.0, gt=0)
    # A status, reaction or media result for a message not seen yet is kept this long.
    pending_ttl_days: float = Field(default=7.0, gt=0)
    # How often the worker reopens the snoozed conversations whose snooze has ended (the API promises
    # within a minute).
    snooze_wake_interval_s: float = Field(default=15.0, gt=0)
    # The presence service's gRPC API: who is online, for auto-assignment (presence down: nothing is
    # auto-assigned meanwhile, messages are not held back).
    presence_target: str = "127.0.0.1:50054"
