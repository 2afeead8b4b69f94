"""Settings of the gateway service: ``GATEWAY_*`` environment variables (and the shared ``INBOX_*``)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")
    secret_fields: ClassVar[tuple[str, ...]] = ("jwt_secret",)

    http_port: int = 8000
    # /internal/alive, /internal/ready and /metrics: for probes and Prometheus, never behind the ingress.
    ops_port: int = 9000
    # The built web UI (web/dist); unset: the repository's, when it has been built (`make web`).
    web_dir: Path | None = None
    # Signs session tokens. No default: a deployment must set its own (the dev value is in .env.example).
    jwt_secret: SecretStr = Field(min_length=16)
    conversations_target: str = "127.0.0.1:50051"
    customers_target: str = "127.0.0.1:50052"
    orders_target: str = "127.0.0.1:50053"
    presence_target: str = "127.0.0.1:50054"
    ingest_target: str = "127.0.0.1:50055"

    # --- sessions -------------------------------------------------------------------------------------
    # A session (token and cookie) ends this long after login, or at logout.
    token_ttl_s: int = Field(default=12 * 3600, gt=0)
    cookie_name: str = "inbox_session"
    # Browsers send a Secure cookie over HTTPS only (and to http://localhost); false for plain-HTTP dev setups.
    cookie_secure: bool = True
    # Failed logins per window, counted in the database so every replica sees the same count: per email and
    # client address, and per client address.
    login_window_s: int = Field(default=900, gt=0)
    login_max_per_email_ip: int = Field(default=10, gt=0)
    login_max_per_ip: int = Field(default=50, gt=0)
    # Per email from any address: after this many failures, each attempt waits 1, 2, 4 ... seconds (at most
    # the max) after the previous one. Slows guessing, never locks the owner out.
    login_email_free_failures: int = Field(default=5, ge=0)
    login_email_backoff_max_s: int = Field(default=30, gt=0)
    # How many proxies in front of the gateway append to X-Forwarded-For (0: use the peer address). Behind an
    # ingress every client would otherwise share its address, and with it the per-address limit.
    trusted_proxy_hops: int = Field(default=0, ge=0)
    # Password hashes computed at once (argon2id: 64 MiB each); more logins wait their turn.
    password_hash_workers: int = Field(default=2, gt=0, le=16)

    # --- members ---------------------------------------------------------------------------------------
    # An invitation's token works this long (and once).
    invitation_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)

    # --- workspaces -----------------------------------------------------------------------------------
    # ISO 4217 currency of a new workspace's orders when none is given.
    default_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")

    # --- calls to the services ------------------------------------------------------------------------
    # Streaming a media file to or from ingest may take longer than an ordinary call's deadline: the whole
    # stream, as fast as the browser sends or reads (a 100 MB document at 2 Mbit/s takes about 7 minutes).
    media_deadline_s: float = Field(default=600.0, gt=0)
    # How long a request's principal (session, agent, roles) is reused; changes made on this replica are
    # seen at once and elsewhere within a second (auth.Auth); 0 reads them on every request.
    principal_cache_s: float = Field(default=10.0, ge=0)
    # How long the number -> workspace routing read from ingest is reused.
    channels_cache_s: float = Field(default=30.0, ge=0)

    # --- the live stream ------------------------------------------------------------------------------
    # Events kept in memory for Last-Event-ID resumes.
    stream_buffer_size: int = Field(default=5000, gt=0)
    # Events waiting for one connection; a client this far behind is disconnected (it reconnects and resumes).
    stream_queue_size: int = Field(default=256, gt=0)
    # A comment line this often keeps proxies from closing an idle stream (docs/api.md: at least every 15 s).
    stream_keepalive_s: float = Field(default=15.0, gt=0, le=15.0)
    # A client that takes longer than this to accept one write is disconnected.
    stream_send_timeout_s: float = Field(default=30.0, gt=0)
    # The kernel's send buffer per connection (Linux doubles it). A client that stops reading holds at most
    # this in the kernel before its writes block (then the send timeout and the queue bound take over);
    # 0 leaves it to the kernel, which grows it to 4 MiB per connection. It applies to every connection (API
    # pages and media too): behind the cluster's ingress the round trip is short, so it costs no throughput.
    send_buffer_bytes: int = Field(default=64 * 1024, ge=0)
    # While a stream is open the agent is online: presence heartbeats this often (presence expires at 45 s).
    stream_heartbeat_s: float = Field(default=15.0, gt=0)
