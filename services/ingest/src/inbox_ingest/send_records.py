"""The sender's records in ingest's database: ``outbound`` (one document per command: its state, attempts,
outcome, and the media ids a number's uploads got) and ``parked_sends`` (the sends taken off their partition,
in order per number, with each number's queue lease), and the per-number rate limiter. See sender.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.events import Event, utcnow
from inbox_core.events.commands import CommandBase, SendCommand
from inbox_core.events.whatsapp import MetaError
from inbox_core.mongo import Document
from inbox_ingest.domain.sending import UPLOADED_MEDIA_LIFETIME, TokenBucket

Sleep = Callable[[float], Awaitable[None]]

# An uploaded media id is reused until this long before Meta forgets it (30 days).
_UPLOAD_MARGIN = timedelta(days=1)
FINAL_STATES = ("accepted", "failed")
# Waiting in parked_sends for send_retry_loop (an outbound state).
PARKED = "parked"
# How long the retry loop holds a number's queue per send it tries (renewed for each).
_QUEUE_LEASE = timedelta(seconds=330)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RateLimiter:
    """A token bucket per phone number id (domain.sending.TokenBucket), waiting with ``sleep``."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}

    async def acquire(self, key: str) -> float:
        """Waits for a slot; returns how long it waited."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket.full(self.rate, now)
        wait = bucket.reserve(now)
        if wait > 0:
            await self.sleep(wait)
        return wait


class OutboundStore:
    """The ``outbound`` collection (one document per command id) and the upload cache."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.outbound = db["outbound"]
        self.uploads = db["media_uploads"]

    async def get(self, command_id: str) -> Document | None:
        return await self.outbound.find_one({"_id": command_id})

    async def start(self, command: CommandBase, kind: str) -> Document | None:
        """Marks the command ``sending``; returns the recorded document instead when it has an outcome."""
        now = utcnow()
        try:
            await self.outbound.update_one(
                {"_id": command.command_id, "state": {"$nin": list(FINAL_STATES)}},
                {"$set": {"state": "sending", "kind": kind, "phone_number_id": command.phone_number_id,
                          "updated_at": now},
                 "$setOnInsert": {"created_at": now, "attempts": 0}},
                upsert=True,
            )
        except DuplicateKeyError:
            # Another delivery recorded the outcome between our read and this write.
            return await self.get(command.command_id)
        return None

    async def add_attempts(self, command_id: str, n: int, error: str, meta_error: MetaError | None = None) -> None:
        update: dict[str, Any] = {"last_error": error, "updated_at": utcnow()}
        if meta_error is not None:
            update["last_meta_error"] = meta_error.model_dump(mode="json", exclude_none=True)
        await self.outbound.update_one({"_id": command_id}, {"$inc": {"attempts": n}, "$set": update})

    async def mark_parked(self, command: CommandBase, kind: str) -> None:
        now = utcnow()
        with contextlib.suppress(DuplicateKeyError):  # it has an outcome already: that stays
            await self.outbound.update_one(
                {"_id": command.command_id, "state": {"$nin": list(FINAL_STATES)}},
                {"$set": {"state": PARKED, "updated_at": now},
                 "$setOnInsert": {"kind": kind, "phone_number_id": command.phone_number_id, "created_at": now,
                                  "attempts": 0}},
                upsert=True)

    async def finish(self, command_id: str, state: str, attempts: int, *, wamid: str | None = None,
                     error: MetaError | None = None, event: Event | None = None,
                     response: dict[str, Any] | None = None) -> None:
        update: dict[str, Any] = {"state": state, "attempts": attempts, "updated_at": utcnow(),
                                  "finished_at": utcnow()}
        if wamid is not None:
            update["wamid"] = wamid
        if error is not None:
            update["error"] = error.model_dump(mode="json", exclude_none=True)
        if event is not None:
            update["outcome_event"] = json.loads(event.model_dump_json())
        if response is not None:
            update["response"] = response
        await self.outbound.update_one({"_id": command_id}, {"$set": update})

    async def cached_upload(self, phone_number_id: str, storage_id: str) -> str | None:
        doc = await self.uploads.find_one({"_id": f"{phone_number_id}:{storage_id}",
                                           "expires_at": {"$gt": utcnow() + _UPLOAD_MARGIN}})
        return str(doc["media_id"]) if doc else None

    async def remember_upload(self, phone_number_id: str, storage_id: str, media_id: str) -> None:
        now = utcnow()
        await self.uploads.update_one(
            {"_id": f"{phone_number_id}:{storage_id}"},
            {"$set": {"media_id": media_id, "uploaded_at": now, "expires_at": now + UPLOADED_MEDIA_LIFETIME}},
            upsert=True,
        )


class ParkedSends:
    """Sends waiting to be retried off the partition: ``parked_sends`` (one document per command, in the
    order they were parked) and ``send_queues`` (one per number with parked sends: when it is next due,
    and a lease so that one retry loop at a time works a number)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.sends = db["parked_sends"]
        self.queues = db["send_queues"]

    async def has_queue(self, phone_number_id: str) -> bool:
        return await self.queues.find_one({"_id": phone_number_id}, {"_id": 1}) is not None

    async def park(self, command: SendCommand, due: datetime) -> None:
        """Idempotent (a redelivered command is parked once); the queue, if new, is due at ``due``."""
        with contextlib.suppress(DuplicateKeyError):
            await self.sends.insert_one({"_id": command.command_id, "phone_number_id": command.phone_number_id,
                                         "seq": time.time_ns(), "parked_at": utcnow(),
                                         "command": command.model_dump(mode="json")})
        await self.queue(command.phone_number_id, due)

    async def queue(self, phone_number_id: str, due: datetime) -> None:
        await self.queues.update_one({"_id": phone_number_id},
                                     {"$setOnInsert": {"next_try_at": due, "lease_until": _EPOCH}}, upsert=True)

    async def due(self, now: datetime, limit: int = 50) -> list[str]:
        docs = await self.queues.find({"next_try_at": {"$lte": now}, "lease_until": {"$lte": now}},
                                      {"_id": 1}).limit(limit).to_list(None)
        return [str(d["_id"]) for d in docs]

    async def claim(self, phone_number_id: str, now: datetime) -> bool:
        """Takes (or renews) the number's lease; False when another loop holds it or it is not due."""
        doc = await self.queues.find_one_and_update(
            {"_id": phone_number_id, "next_try_at": {"$lte": now}, "lease_until": {"$lte": now}},
            {"$set": {"lease_until": now + _QUEUE_LEASE}}, return_document=ReturnDocument.AFTER)
        return doc is not None

    async def renew(self, phone_number_id: str) -> None:
        await self.queues.update_one({"_id": phone_number_id}, {"$set": {"lease_until": utcnow() + _QUEUE_LEASE}})

    async def head(self, phone_number_id: str) -> Document | None:
        docs = await self.sends.find({"phone_number_id": phone_number_id}).sort("seq", ASCENDING).limit(1).to_list(1)
        return docs[0] if docs else None

    async def remove(self, command_id: str) -> None:
        await self.sends.delete_one({"_id": command_id})

    async def reschedule(self, phone_number_id: str, due: datetime) -> None:
        await self.queues.update_one({"_id": phone_number_id}, {"$set": {"next_try_at": due, "lease_until": _EPOCH}})

    async def close_if_empty(self, phone_number_id: str) -> None:
        await self.queues.delete_one({"_id": phone_number_id})
        # A send parked between our last look and the delete still needs its queue.
        if await self.head(phone_number_id) is not None:
            await self.queue(phone_number_id, utcnow())

    async def count(self, phone_number_id: str | None = None) -> int:
        query: Document = {} if phone_number_id is None else {"phone_number_id": phone_number_id}
        return int(await self.sends.count_documents(query))
