"""MongoDB through PyMongo's async API, kept to what both MongoDB and FerretDB v1 support.

No multi-document transactions, change streams, $lookup/$facet or TTL indexes (docs/architecture.md): expiring
state stores an ``expires_at`` and is filtered on it.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import Histogram
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError, WriteConcernError

from inbox_core.errors import InvalidRequest
from inbox_core.settings import InboxSettings

Document = dict[str, Any]

log = logging.getLogger("inbox.mongo")


MONGO_COMMAND_SECONDS = Histogram("inbox_mongo_command_seconds", "Database command latency",
                                  ["command", "collection"])
# The commands whose shape is worth a log line when slow (not hello, ping, getMore's bookkeeping, ...).
_WATCHED = frozenset({"find", "insert", "update", "delete", "findAndModify", "count", "aggregate", "distinct"})


class CommandTimes(monitoring.CommandListener):
    """Each command's latency as ``inbox_mongo_command_seconds``; a command slower than ``slow_ms`` is
    logged with its collection and the field names of its filter (never their values: personal data)."""

    def __init__(self, slow_ms: float) -> None:
        self.slow_ms = slow_ms
        self._shapes: dict[tuple[int, int], tuple[str, str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name not in _WATCHED:
            return
        command = event.command
        collection = str(command.get(name, ""))
        query = command.get("filter") or command.get("query")
        if query is None and name in ("update", "delete"):
            statements = command.get("updates") or command.get("deletes") or [{}]
            query = statements[0].get("q")
        shape = ",".join(sorted(query)) if isinstance(query, dict) else ""
        self._shapes[(event.request_id, event.operation_id or 0)] = (name, collection, shape)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._done(event.request_id, event.operation_id or 0, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._done(event.request_id, event.operation_id or 0, event.duration_micros)

    def _done(self, request_id: int, operation_id: int, micros: int) -> None:
        found = self._shapes.pop((request_id, operation_id), None)
        if found is None:
            return
        name, collection, shape = found
        MONGO_COMMAND_SECONDS.labels(name, collection).observe(micros / 1e6)
        if self.slow_ms and micros / 1000 >= self.slow_ms:
            log.warning("slow database command: %s on %s by {%s}: %.0f ms", name, collection, shape, micros / 1000)


def make_client(settings: InboxSettings, service: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        appname=f"inbox-{service}",
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=5000,
        # Every operation, not only selection and connect: a server that stops answering must not hang
        # requests and consumers. A block that needs longer (a whole file) sets pymongo.timeout() itself.
        timeoutMS=settings.mongo_timeout_ms,
        uuidRepresentation="standard",
        event_listeners=[CommandTimes(settings.mongo_slow_ms)],
    )


def database_unavailable(exc: BaseException) -> bool:
    """The database is away or did not answer within the operation's timeout: a retry may succeed (gRPC
    UNAVAILABLE, HTTP 503, a consumer retries the same message). A timeout is an ``ExecutionTimeout`` or
    a ``NetworkTimeout`` depending on where it struck; PyMongo marks both with ``timeout``."""
    if isinstance(exc, ConnectionFailure | WriteConcernError):
        return True
    return isinstance(exc, PyMongoError) and bool(exc.timeout)


def service_database(
    client: AsyncMongoClient[Document], settings: InboxSettings, service: str
) -> AsyncDatabase[Document]:
    """Each service owns its own database; no service reads another's."""
    return client[f"{settings.db_prefix}_{service}"]


async def ping(client: AsyncMongoClient[Document]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class Index:
    keys: Sequence[tuple[str, int]]
    name: str
    unique: bool = False
    options: dict[str, Any] = field(default_factory=dict)


async def ensure_indexes(collection: AsyncCollection[Document], indexes: Sequence[Index]) -> None:
    for index in indexes:
        await collection.create_index(list(index.keys), name=index.name, unique=index.unique, **index.options)


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque keyset cursor: the sort values of the last item of a page."""
    packed = [{"$dt": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(packed, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != arity:
            raise ValueError("wrong shape")
        return [datetime.fromisoformat(v["$dt"]) if isinstance(v, dict) and "$dt" in v else v for v in values]
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidRequest("the cursor is not valid", {"cursor": cursor}) from exc
