"""Settings of the presence service: ``PRESENCE_*`` environment variables (and the shared ``INBOX_*``)."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings
from inbox_presence.domain import Ttls


class PresenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRESENCE_", extra="ignore")

    grpc_port: int = 50054
    # Liveness, readiness and Prometheus metrics over HTTP.
    ops_port: int = 9054
    # Composing stops this long after the last SetComposing(on): the UI renews while the agent types.
    composing_ttl_s: float = Field(default=6.0, gt=0)
    # Offline this long after the last heartbeat (a UI heartbeating every 15 s may miss two).
    online_ttl_s: float = Field(default=45.0, gt=0)
    # Viewing ends this long after the last SetViewing or heartbeat of the agent.
    viewing_ttl_s: float = Field(default=45.0, gt=0)
    # How often each replica looks for expired states (a stop by expiry is published at most this late).
    purge_interval_s: float = Field(default=1.0, gt=0)
    # At most this many expired states and unpublished changes per replica and cycle.
    purge_batch: int = Field(default=500, gt=0)
    # An event not published this long after it was written (its replica died mid-call) is published
    # by the purge loop; one whose publish failed is retried at once.
    relay_grace_s: float = Field(default=30.0, gt=0)

    def ttls(self) -> Ttls:
        return Ttls(
            composing=timedelta(seconds=self.composing_ttl_s),
            online=timedelta(seconds=self.online_ttl_s),
            viewing=timedelta(seconds=self.viewing_ttl_s),
        )
