"""Helpers of the gateway tests: a gateway served over real HTTP on a free port, workspaces with agents,
the services' real gRPC servers in-process, and an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from argon2 import PasswordHasher
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from inbox.conversations.v1 import conversations_pb2_grpc
from inbox.customers.v1 import customers_pb2_grpc
from inbox.ingest.v1 import ingest_pb2_grpc
from inbox.orders.v1 import orders_pb2_grpc
from inbox.presence.v1 import presence_pb2_grpc
from inbox_conversations.consumers import Handlers
from inbox_conversations.outbox import Publisher, Topics
from inbox_conversations.presence_client import PresenceDirectory
from inbox_conversations.rpc import SERVICE_NAME as CONVERSATIONS
from inbox_conversations.rpc import ConversationsRpc
from inbox_conversations.store import ConversationsStore
from inbox_core.events import Event
from inbox_core.events.whatsapp import MessageReceived, TemplatesSynced
from inbox_core.grpc_server import GrpcServer
from inbox_core.ids import conversation_id
from inbox_core.mongo import Document, service_database
from inbox_core.outbox import kafka_publish
from inbox_core.runtime import HttpComponent
from inbox_core.settings import InboxSettings
from inbox_customers.app import Customers
from inbox_customers.consumers import handle_whatsapp_event
from inbox_customers.rpc import SERVICE_NAME as CUSTOMERS
from inbox_customers.rpc import CustomersRpc
from inbox_customers.store import CustomersRepository
from inbox_gateway.auth import Passwords
from inbox_gateway.gateway import Gateway
from inbox_gateway.http import create_app
from inbox_gateway.settings import GatewaySettings
from inbox_ingest.graph import GraphClient
from inbox_ingest.media import MediaStore
from inbox_ingest.rpc import SERVICE_NAME as INGEST
from inbox_ingest.rpc import IngestRpc
from inbox_ingest.store import IngestStore
from inbox_orders.app import Orders
from inbox_orders.rpc import SERVICE_NAME as ORDERS
from inbox_orders.rpc import OrdersRpc
from inbox_orders.store import OrdersRepository
from inbox_presence.domain import Ttls
from inbox_presence.rpc import SERVICE_NAME as PRESENCE
from inbox_presence.rpc import PresenceRpc
from inbox_presence.store import PresenceStore
from inbox_presence.tracker import PresenceTracker, kafka_publisher
from inbox_testkit.graph import GraphStandIn, graph_stand_in
from inbox_testkit.ports import free_port

JWT_SECRET = "test-only-jwt-secret-0123456789abcdef"
PASSWORD = "correct horse battery"
# Cheap argon2 parameters: the tests log in many times; production uses argon2-cffi's defaults.
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def nowhere() -> str:
    """A gRPC target where nothing listens (a service that is down)."""
    return f"127.0.0.1:{free_port()}"


def gateway_settings(inbox: InboxSettings, **changes: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "jwt_secret": JWT_SECRET, "cookie_secure": False, "conversations_target": nowhere(),
        "customers_target": nowhere(), "orders_target": nowhere(), "presence_target": nowhere(),
        "ingest_target": nowhere(), "inbox": inbox,
    }
    values.update(changes)
    return GatewaySettings(**values)


class Server:
    """A gateway served by uvicorn on a free port (real HTTP: streaming and slow clients behave as in production,
    the kernel's send buffer capped as __main__ caps it; left to the kernel, it grows to 4 MiB for a client
    that does not read, and how soon a stuck stream is noticed would depend on the machine)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.port = free_port()
        self.component = HttpComponent("http", create_app(gateway), self.port, host="127.0.0.1",
                                       send_buffer_bytes=gateway.settings.send_buffer_bytes or None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        await self.component.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.gateway.close_streams()  # as __main__ does before stopping the server
        await self.component.stop()

    def client(self, token: str | None = None, timeout: float = 20.0) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)


@dataclass
class Agent:
    id: str
    email: str
    name: str
    password: str = PASSWORD
    token: str = ""


@dataclass
class Team:
    """A workspace with an admin and an agent."""

    workspace_id: str
    admin: Agent
    agent: Agent
    number: str = field(default_factory=lambda: str(uuid.uuid4().int % 10**15))
    waba: str = field(default_factory=lambda: str(uuid.uuid4().int % 10**15))


async def make_team(gateway: Gateway, name: str = "Acme", currency: str = "EUR") -> Team:
    workspace = await gateway.accounts.create_workspace(name, currency)
    agents = []
    for role in ("admin", "agent"):
        email = f"{role}-{uuid.uuid4().hex[:8]}@{name.lower()}.test"
        password_hash = await FAST_PASSWORDS.hash(PASSWORD)
        agent, _ = await gateway.accounts.create_agent(email, f"{name} {role}", password_hash)
        await gateway.accounts.set_membership(workspace.id, agent.id, role)
        agents.append(Agent(agent.id, email, agent.name))
    return Team(workspace.id, agents[0], agents[1])


async def login(server: Server, agent: Agent) -> str:
    async with server.client() as client:
        response = await client.post("/api/auth/login", json={"email": agent.email, "password": agent.password})
    assert response.status_code == 200, response.text
    agent.token = response.json()["token"]
    return agent.token


# --- the services, in-process ----------------------------------------------------------------------------


@dataclass
class Services:
    """Real gRPC servers of conversations, customers, orders, presence and ingest, on free ports, against
    the test database; they publish to test-only topics."""

    settings: InboxSettings
    client: AsyncMongoClient[Document]
    broker: KafkaBroker
    topics: Topics
    servers: dict[str, GrpcServer] = field(default_factory=dict)
    # Meta's stand-in (the sandbox, in-process), which ingest asks who owns a number being connected.
    meta: GraphStandIn | None = None
    _exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def __post_init__(self) -> None:
        db = lambda name: service_database(self.client, self.settings, name)  # noqa: E731
        self.conversations = ConversationsStore(db("conversations"))
        self.publisher = Publisher(self.conversations, self.broker, self.topics)
        self.handlers = Handlers(self.conversations, self.publisher)
        self.customers = Customers(CustomersRepository(db("customers"), kafka_publish(self.broker)),
                                   topic=self.topics.customers)
        self.orders = Orders(OrdersRepository(db("orders"), kafka_publish(self.broker)), topic=self.topics.orders)
        self.presence = PresenceStore(db("presence"))
        self.tracker = PresenceTracker(self.presence, kafka_publisher(self.broker, f"{self.topics.conversations}.p"),
                                       Ttls(composing=timedelta(seconds=6), online=timedelta(seconds=45),
                                            viewing=timedelta(seconds=45)))
        self.ingest = IngestStore(db("ingest"))
        self.media = MediaStore(db("ingest"))

    async def start(self) -> Services:
        self.meta = await self._exit.enter_async_context(graph_stand_in())
        self.graph = GraphClient(self.meta.graph_url, timeout_s=10)
        self._exit.push_async_callback(self.graph.aclose)
        await asyncio.gather(self.conversations.ensure_indexes(), self.customers.repository.ensure_indexes(),
                             self.orders.repository.ensure_indexes(), self.presence.ensure_indexes(),
                             self.ingest.ensure_indexes())
        parts = {
            "conversations": (conversations_pb2_grpc.add_ConversationsServiceServicer_to_server,
                              ConversationsRpc(self.conversations, self.publisher, publish_timeout_s=10),
                              CONVERSATIONS),
            "customers": (customers_pb2_grpc.add_CustomersServiceServicer_to_server,
                          CustomersRpc(self.customers), CUSTOMERS),
            "orders": (orders_pb2_grpc.add_OrdersServiceServicer_to_server, OrdersRpc(self.orders),
                       ORDERS),
            "presence": (presence_pb2_grpc.add_PresenceServiceServicer_to_server, PresenceRpc(self.tracker), PRESENCE),
            "ingest": (ingest_pb2_grpc.add_IngestServiceServicer_to_server,
                       IngestRpc(self.ingest, self.media, self.graph), INGEST),
        }
        for name, (register, servicer, full_name) in parts.items():
            server = GrpcServer(free_port(), host="127.0.0.1")
            server.add(register, servicer, full_name)
            await server.start()
            self.servers[name] = server
        # The worker's handlers ask the presence server who is online (auto-assignment).
        directory = PresenceDirectory(self.servers["presence"].address)
        self._exit.push_async_callback(directory.close)
        self.handlers = Handlers(self.conversations, self.publisher, online=directory)
        return self

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop(grace=0.5) for s in self.servers.values()))
        await self._exit.aclose()

    def own_number(self, phone_number_id: str, waba_id: str, access_token: str) -> None:
        """Makes Meta's stand-in know the number under the account, with a token that owns it."""
        assert self.meta is not None, "start() first"
        self.meta.register(phone_number_id, waba_id, access_token)

    def targets(self) -> dict[str, str]:
        return {f"{name}_target": server.address for name, server in self.servers.items()}

    async def inbound(self, team: Team, wa_id: str, text: str = "hello", *, name: str = "Ada Lovelace",
                      at: datetime | None = None) -> str:
        """A customer's message arriving (as the consumers of conversations and customers see it): the
        conversation id."""
        payload = MessageReceived(
            waba_id=team.waba, phone_number_id=team.number, display_phone_number="15550001111", field="messages",
            origin="live", direction="in", wamid=f"wamid.{uuid.uuid4().hex}", wa_id=wa_id, profile_name=name,
            timestamp=at or datetime.now(UTC) - timedelta(minutes=1), type="text", text=text)
        event = Event.of(payload, workspace_id=team.workspace_id)
        await self.handlers.on_whatsapp_event(event)
        await handle_whatsapp_event(self.customers, event)
        return conversation_id(team.workspace_id, team.number, wa_id)

    async def templates(self, team: Team, templates: list[dict[str, Any]]) -> None:
        await self.handlers.on_whatsapp_event(Event.of(TemplatesSynced(waba_id=team.waba, templates=templates),
                                                       workspace_id=team.workspace_id))


# --- server-sent events ----------------------------------------------------------------------------------


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: Any


class SseReader:
    """Reads ``GET /api/stream`` frame by frame (comments kept apart, for the keep-alive test)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.comments: list[str] = []
        self.events: list[SseEvent] = []

    async def next(self, timeout: float = 20.0) -> SseEvent:
        deadline = time.monotonic() + timeout
        current: dict[str, str] = {}
        data: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no event in time")
            line = await asyncio.wait_for(self._lines.__anext__(), remaining)
            if line == "":
                if data or "event" in current:
                    raw = "\n".join(data)
                    event = SseEvent(current.get("id"), current.get("event", "message"),
                                     json.loads(raw) if raw else None)
                    self.events.append(event)
                    return event
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "data":
                data.append(value)
            elif key in ("id", "event"):
                current[key] = value

    async def comment(self, timeout: float = 20.0) -> str:
        """The next comment line (e.g. a keep-alive), skipping events."""
        deadline = time.monotonic() + timeout
        seen = len(self.comments)
        while len(self.comments) == seen:
            line = await asyncio.wait_for(self._lines.__anext__(), max(0.01, deadline - time.monotonic()))
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
        return self.comments[-1]

    async def until(self, predicate: Any, timeout: float = 20.0) -> SseEvent:
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(max(0.01, deadline - time.monotonic()))
            if predicate(event):
                return event


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, **headers: str) -> AsyncIterator[SseReader]:
    async with client.stream("GET", "/api/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        yield SseReader(response)


# --- the API tests' team on a running gateway ------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 200
TEMPLATE = {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} shipped"}]}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    return response.json() if response.content else None


async def connect(admin: httpx.AsyncClient, team: Team, services: Services) -> None:
    services.own_number(team.number, team.waba, "EAAG-secret-token")
    body = {"workspace_id": team.workspace_id, "phone_number_id": team.number, "display_phone_number": "15550001111",
            "name": "Shop", "waba_id": team.waba, "access_token": "EAAG-secret-token"}
    number = ok(await admin.post("/api/admin/numbers", json=body), 201)["number"]
    assert number["has_access_token"] is True and "EAAG-secret-token" not in str(number)


@asynccontextmanager
async def team_signed_in(gw: Gateway, services: Services) -> AsyncIterator[tuple[Team, httpx.AsyncClient,
                                                                                 httpx.AsyncClient]]:
    """A new team on a running gateway (its stream feed ready), its number connected, its admin and its
    agent signed in."""
    team = await make_team(gw)
    async with Server(gw) as server:
        assert gw.feed is not None
        await asyncio.wait_for(gw.feed.ready.wait(), 60)
        admin, agent = server.client(await login(server, team.admin)), server.client(await login(server, team.agent))
        async with admin, agent:
            await connect(admin, team, services)
            yield team, admin, agent
