"""Helpers of the conversations tests: a topic tail, and one workspace with the service around it."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_conversations.consumers import Handlers
from inbox_conversations.outbox import Publisher, Topics
from inbox_conversations.rpc import ConversationsRpc
from inbox_conversations.store import ConversationsStore
from inbox_conversations.usecases.routing import OnlineAgents
from inbox_core.events import Event
from inbox_core.events.whatsapp import MessageReceived, SendAccepted, SendFailed, StatusUpdated
from inbox_core.ids import conversation_id
from inbox_core.settings import InboxSettings
from inbox_testkit.commands import DatabaseCommands
from inbox_testkit.infra import Infra

TEST_PARTITIONS = 3


class Tail:
    """Everything published to a topic after it was opened (all partitions, no consumer group)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = TEST_PARTITIONS) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.records: list[Any] = []

    async def start(self) -> None:
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self.consumer.assign(tps)
        ends = await self.consumer.end_offsets(tps)
        for tp in tps:
            self.consumer.seek(tp, ends[tp])

    async def stop(self) -> None:
        await self.consumer.stop()

    async def _poll(self, timeout_ms: int) -> None:
        batch = await self.consumer.getmany(timeout_ms=timeout_ms)
        for records in batch.values():
            self.records.extend(records)

    def events(self, where: Callable[[Event], bool] = lambda e: True) -> list[Event]:
        return [e for e in (Event.from_bytes(r.value) for r in self.records) if where(e)]

    async def wait_for(self, where: Callable[[list[Event]], bool], timeout: float = 20.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.events()
            if where(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {self.topic}; got {[e.type for e in found]}")
            await self._poll(200)

    async def settle(self, seconds: float = 1.0) -> None:
        """Reads on a little, so that an unexpected extra event would be seen."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await self._poll(100)

    def keys(self) -> list[str]:
        return [r.key.decode() for r in self.records]


class Crash(Exception):
    pass


def crash_once_after(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> list[int]:
    """Makes ``obj.name`` do its work and then raise, once: the process dies after that write."""
    original = getattr(obj, name)
    calls: list[int] = []

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            raise Crash(name)
        return result

    monkeypatch.setattr(obj, name, wrapper)
    return calls


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


@dataclass
class Env:
    """One workspace with one connected number, and the service's parts around it."""

    infra: Infra
    settings: InboxSettings
    topics: Topics
    store: ConversationsStore
    broker: KafkaBroker
    publisher: Publisher
    handlers: Handlers
    rpc: ConversationsRpc
    workspace: str = field(default_factory=lambda: f"ws_{uuid.uuid4().hex[:10]}")
    number: str = field(default_factory=lambda: f"pn{uuid.uuid4().int % 10**12}")
    waba: str = "WABA-1"

    def conversation_id(self, wa_id: str, number: str | None = None, user_id: str | None = None) -> str:
        return conversation_id(self.workspace, number or self.number, wa_id or None, user_id)

    def message(self, wa_id: str = "34600111222", *, wamid: str | None = None, at: datetime | None = None,
                text: str | None = "hello", type_: str = "text", origin: str = "live", direction: str = "in",
                profile_name: str | None = "Ada Lovelace", number: str | None = None, workspace: str | None = "",
                event_id: str | None = None, **fields: Any) -> Event:
        payload = MessageReceived(
            waba_id=self.waba, phone_number_id=number or self.number, display_phone_number="15550001111",
            field="messages" if origin == "live" else ("history" if origin == "history" else "smb_message_echoes"),
            origin=origin, direction=direction, wamid=wamid or f"wamid.{uuid.uuid4().hex}", wa_id=wa_id,
            profile_name=profile_name, timestamp=at or ago(minutes=5), type=type_, text=text, **fields,
        )
        return Event.of(payload, workspace_id=self.workspace if workspace == "" else workspace, id=event_id)

    def status(self, wamid: str, status: str, *, at: datetime | None = None, wa_id: str = "34600111222",
               errors: list[dict[str, Any]] | None = None) -> Event:
        payload = StatusUpdated(waba_id=self.waba, phone_number_id=self.number, wamid=wamid, status=status,
                                timestamp=at or ago(minutes=1), recipient_id=wa_id, wa_id=wa_id,
                                errors=errors or [])
        return Event.of(payload, workspace_id=self.workspace)

    def accepted(self, message_id: str, wamid: str, *, with_ids: bool = True) -> Event:
        payload = SendAccepted(command_id=message_id, phone_number_id=self.number, wamid=wamid,
                               message_id=message_id if with_ids else None)
        return Event.of(payload, workspace_id=self.workspace)

    def failed(self, message_id: str, code: int = 131047, title: str = "Re-engagement message") -> Event:
        payload = SendFailed(command_id=message_id, phone_number_id=self.number,
                             error={"code": code, "title": title, "details": "more than 24 hours"})
        return Event.of(payload, workspace_id=self.workspace)

    async def deliver(self, *events: Event) -> None:
        for event in events:
            await self.handlers.on_whatsapp_event(event)

    async def conversation(self, wa_id: str = "34600111222", number: str | None = None) -> dict[str, Any]:
        doc = await self.store.conversations.find_one({"_id": self.conversation_id(wa_id, number)})
        assert doc is not None
        return doc

    async def tail(self, topic: str) -> Tail:
        tail = Tail(self.infra.kafka_bootstrap, topic)
        await tail.start()
        self._tails.append(tail)
        return tail

    _tails: list[Tail] = field(default_factory=list)


@contextlib.asynccontextmanager
async def counted_handlers(env: Env, *, online: OnlineAgents | None = None
                           ) -> AsyncIterator[tuple[Handlers, DatabaseCommands]]:
    """The worker's handlers over a client of their own whose every database command is counted (what a
    use case costs), on the env's database and publisher."""
    ops = DatabaseCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env.infra.mongo_url, tz_aware=True,
                                                                event_listeners=[ops])
    try:
        yield Handlers(ConversationsStore(client[env.store.db.name]), env.publisher, online=online), ops
    finally:
        await client.close()


async def list_ids(stub: ConversationsServiceStub, env: Env, **fields: Any) -> list[str]:
    reply = await stub.ListConversations(pb.ListConversationsRequest(workspace_id=env.workspace, **fields))
    return [c.id for c in reply.items]
