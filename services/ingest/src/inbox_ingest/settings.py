"""Settings of the ingest service: ``INGEST_*`` environment variables (and the shared ``INBOX_*``)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")
    secret_fields: ClassVar[tuple[str, ...]] = ("meta_app_secret", "meta_verify_token")

    http_port: int = 8001
    grpc_port: int = 50055
    # /internal/alive, /internal/ready and /metrics, never on the webhook's public port: the API's, the worker's.
    ops_port: int = 9055
    worker_ops_port: int = 9001
    # Meta's app secret keys the X-Hub-Signature-256 HMAC; the verify token answers the GET handshake.
    meta_app_secret: SecretStr = Field(min_length=1)
    meta_verify_token: SecretStr = Field(min_length=1)
    # Meta's maximum webhook payload is 3 MB; anything larger is answered 413.
    max_body_bytes: int = 3 * 1024 * 1024
    # How long the webhook waits for Kafka before answering 503 (Meta then retries).
    publish_timeout_s: float = 3.0
    # Duplicate deliveries are recognised for this long (Meta retries for up to 7 days).
    dedupe_days: int = 8
    # Events of numbers no workspace has connected are kept this long for admins, then expired.
    unrouted_retention_days: float = Field(default=30.0, gt=0)
    # Channels (numbers with their access tokens) from a mounted secret file, JSON list; see README.
    channels_file: Path | None = None

    graph_api_base_url: str = "https://graph.facebook.com/v24.0"
    graph_timeout_s: float = 20.0
    # Meta's default throughput per business number; with N sender replicas give each rate/N.
    send_rate_per_second: float = 80.0
    # A send's retry budget: attempts in all (Retry-After is honoured between them, exponential backoff from
    # base to max), of which send_inline_attempts while the command's delivery holds its partition; then it is
    # parked per number and retried off the partition (send_retry_loop), and failed once the budget is spent
    # or it has waited send_retry_window_s.
    send_max_attempts: int = Field(default=6, ge=1)
    send_inline_attempts: int = Field(default=2, ge=1)
    send_retry_base_s: float = 0.5
    send_retry_max_s: float = 30.0
    send_retry_window_s: float = 900.0
    send_retry_poll_s: float = 0.5
    # The longest one delivery of a command may take (Meta calls included), well under aiokafka's
    # max_poll_interval (300 s): past it the send is parked, so the consumer never misses a poll.
    send_delivery_deadline_s: float = Field(default=60.0, gt=0, lt=300)
    media_max_attempts: int = 8
    # Inbound media downloads: exponential from base to max between attempts; the loop polls this often.
    media_retry_base_s: float = 30.0
    media_retry_max_s: float = 3600.0
    media_poll_interval_s: float = 1.0
    # Retention (media_retention.py): finished media jobs, uploads never sent nor kept by a library item, and
    # chunks of uploads that never finished, each purged past its age; at most a batch of each per round.
    media_job_retention_days: float = Field(default=14.0, gt=0)
    unsent_upload_retention_days: float = Field(default=30.0, gt=0)
    partial_upload_retention_hours: float = Field(default=24.0, gt=0)
    media_retention_interval_s: float = Field(default=3600.0, gt=0)
    media_retention_batch: int = Field(default=500, ge=1)
    template_sync_interval_s: float = 900.0
