"""Settings: pydantic-settings classes read from the environment only, failing fast when one is wrong.

Shared settings are ``INBOX_<NAME>``; a service's own are ``<SERVICE>_<NAME>`` (see .env.example).
"""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

# Marks of a secret that belongs only in development, a test or an example file (.env.example, the
# Kubernetes secret example): a deployment starting with one has forgotten to set its own.
PLACEHOLDER_MARKS = ("change-me", "changeme", "change_me", "dev-only", "test-only", "placeholder", "example")


def is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return any(mark in lowered for mark in PLACEHOLDER_MARKS)


class InboxSettings(BaseSettings):
    """What every service shares."""

    model_config = SettingsConfigDict(env_prefix="INBOX_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    log_level: str = "INFO"
    # Prefix of every database name, so several deployments (or test runs) can share one server.
    db_prefix: str = "inbox"
    # A database command slower than this is logged (its collection and filter fields); 0: never.
    mongo_slow_ms: float = Field(default=500.0, ge=0)
    # Client-side timeout of every database operation (PyMongo's timeoutMS): a database that stops
    # answering fails calls with UNAVAILABLE (503) within this, instead of hanging them. Not tighter than
    # the slowest legitimate operation: on FerretDB (no secondary indexes) a scan of a grown collection on
    # a loaded machine took several seconds in the fault tests, which a 5 s timeout turned into failures.
    mongo_timeout_ms: int = Field(default=10000, ge=100)
    grpc_deadline_s: float = Field(default=5.0, gt=0)
    # Prefix of every consumer group, so that several deployments (or test runs) can share one Kafka.
    group_prefix: str = ""
    # Consumers per subscription in one process, each with its own partitions (order within a partition
    # is kept), for a handler that mostly waits on the database. 1 by default: with more, FastStream 0.7
    # stops the consumers before the running handlers end, so a stopping pod's last events are handled
    # again elsewhere (harmless, the handlers are idempotent, but replicas are the cleaner way to scale).
    consumer_workers: int = Field(default=1, ge=1, le=32)
    # Lets services start with placeholder or development secrets (.env.example's); `make dev` and the
    # tests set it, a deployment never does.
    allow_dev_secrets: bool = False


def load(cls: type[SettingsT]) -> SettingsT:
    """Reads settings; on a missing or invalid value prints which, and exits (fail fast at start-up)."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = [f"invalid configuration ({cls.__name__}):"]
        for err in exc.errors():
            name = prefix + ".".join(str(p) for p in err["loc"]).upper()
            # Never echo the value: it may be a secret.
            lines.append(f"  {name}: {err['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
