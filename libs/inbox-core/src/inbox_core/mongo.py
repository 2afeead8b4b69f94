"""MongoDB through PyMongo's async API, kept to what both MongoDB and FerretDB v1 support.

No multi-document transactions, change streams, $lookup/$facet or TTL indexes (DESIGN.md): expiring
state stores an ``expires_at`` and is filtered on it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.errors import InvalidRequest
from inbox_core.settings import InboxSettings

Document = dict[str, Any]


def make_client(settings: InboxSettings, service: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        appname=f"inbox-{service}",
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=5000,
        uuidRepresentation="standard",
    )


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
