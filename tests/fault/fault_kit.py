"""What the fault tests share: a stack whose consumers run as their own processes, Meta's side of the
webhook (signed posts, retried until answered 200, as Meta does), and the inbox read back over gRPC.

Every test sends uniquely numbered webhooks from customers of its own (fresh ``wa_id``s, so fresh
conversations), then compares what was answered 200 with what the inbox shows: each message once,
unread counts and customer stats exact. Each prints what it sent, what it found and the difference.

Here: the stack and the inbox read back over gRPC, with the loads beside the webhooks; Meta's side is
fault_meta.py, the comparing fault_findings.py, tenants sharing partitions fault_tenants.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Self

import grpc
import httpx
from fault_meta import DISPLAY, NUMBER, WABA, Customer

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as cpb
from inbox.conversations.v1 import conversations_pb2_grpc as cgrpc
from inbox.customers.v1 import customers_pb2 as kpb
from inbox.customers.v1 import customers_pb2_grpc as kgrpc
from inbox.ingest.v1 import ingest_pb2 as ipb
from inbox.ingest.v1 import ingest_pb2_grpc as igrpc
from inbox.orders.v1 import orders_pb2 as opb
from inbox.orders.v1 import orders_pb2_grpc as ogrpc
from inbox_testkit.ports import free_port, wait_ready
from inbox_testkit.processes import ServiceProcess
from inbox_testkit.stack import STACK_SECRETS, Stack

AGENT = common_pb2.Actor(id="agent-fault", name="Fault Agent")

# The gateway of the fault stack disconnects a stream client that takes no write for this long.
STREAM_SEND_TIMEOUT_S = 5

# Consumers run apart from the APIs, so a kill -9 hits only the consumer (the webhook keeps answering).
SPLIT = ("conversations", "customers", "ingest")


class FaultStack(Stack):
    """The Stack, with the consumers of conversations, customers and ingest in processes of their own
    (``<service>_worker`` in ``processes``), as Kubernetes runs them (``api`` and ``worker``)."""

    SERVICES = ("orders", "presence", "sandbox", "gateway")

    def start(self) -> FaultStack:
        super().start()  # computes every port and the environment; starts the unsplit services
        for name in SPLIT:
            for role in ("api", "worker"):
                key = name if role == "api" else f"{name}_worker"
                env = dict(self.env)
                if role == "worker":
                    self.ports[f"{key}_ops"] = free_port()
                    variable = "INGEST_WORKER_OPS_PORT" if name == "ingest" else f"{name.upper()}_OPS_PORT"
                    env[variable] = str(self.ports[f"{key}_ops"])
                self.processes[key] = ServiceProcess(name, role, env, self.home / f"{key}.log").start()
        for key in ("conversations", "conversations_worker", "customers", "customers_worker", "ingest",
                    "ingest_worker"):
            self.wait_process(key)
        return self

    def wait_process(self, key: str, timeout: float = 90.0) -> None:
        port = self.ready_port(key)
        self.processes[key].wait_port(port, timeout=timeout)
        if not wait_ready(port, timeout):
            raise RuntimeError(f"{key} not ready in {timeout}s:\n{self.processes[key].output()}")

    def restart(self, key: str) -> None:
        self.processes[key].start()
        self.wait_process(key)

    def stop(self) -> None:
        for key in ("ingest_worker", "customers_worker", "conversations_worker", "ingest", "customers",
                    "conversations"):
            process = self.processes.get(key)
            if process is not None and process.proc is not None and process.proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.terminate(timeout=30)
        super().stop()

    def pid(self, key: str) -> int:
        proc = self.processes[key].proc
        assert proc is not None
        return proc.pid


@dataclass
class Workspace:
    id: str
    agent_email: str
    agent_password: str



# --- The inbox, read back over gRPC -------------------------------------------------------------------------


STATUS_NAMES = {cpb.MESSAGE_STATUS_PENDING: "pending", cpb.MESSAGE_STATUS_SENT: "sent",
                cpb.MESSAGE_STATUS_DELIVERED: "delivered", cpb.MESSAGE_STATUS_READ: "read",
                cpb.MESSAGE_STATUS_FAILED: "failed", cpb.MESSAGE_STATUS_PLAYED: "played",
                cpb.MESSAGE_STATUS_UNSPECIFIED: "unspecified"}
STATUS_RANK = {"unspecified": -1, "pending": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 9}


class Inbox:
    """gRPC clients of conversations, customers, orders and ingest of a stack."""

    def __init__(self, stack: Stack, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self.channels = [grpc.aio.insecure_channel(stack.grpc_target(n))
                         for n in ("conversations", "customers", "orders", "ingest")]
        self.conversations = cgrpc.ConversationsServiceStub(self.channels[0])
        self.customers = kgrpc.CustomersServiceStub(self.channels[1])
        self.orders = ogrpc.OrdersServiceStub(self.channels[2])
        self.ingest = igrpc.IngestServiceStub(self.channels[3])

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()

    async def connect_number(self, number: str = NUMBER, waba: str = WABA) -> None:
        await self.ingest.UpsertChannel(ipb.UpsertChannelRequest(
            channel=ipb.Channel(phone_number_id=number, workspace_id=self.workspace_id, waba_id=waba,
                                display_phone_number=DISPLAY, name="Fault shop"),
            access_token=STACK_SECRETS["SANDBOX_ACCESS_TOKEN"]), timeout=10)

    async def conversation(self, conversation_id: str) -> cpb.Conversation | None:
        try:
            reply = await self.conversations.GetConversation(cpb.GetConversationRequest(
                workspace_id=self.workspace_id, conversation_id=conversation_id), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.conversation

    async def messages(self, conversation_id: str) -> list[cpb.Message]:
        """The whole timeline's messages, oldest first (every page)."""
        pages: list[list[cpb.Message]] = []
        before = ""
        while True:
            reply = await self.conversations.GetTimeline(cpb.GetTimelineRequest(
                workspace_id=self.workspace_id, conversation_id=conversation_id, before=before, limit=100),
                timeout=20)
            pages.append([i.message for i in reply.items if i.WhichOneof("item") == "message"])
            before = reply.next_before
            if not before:
                break
        return [m for page in reversed(pages) for m in page]

    async def wait_conversations(self, customers: list[Customer], within: float = 60.0) -> None:
        """Until each customer's conversation is there with its 24-hour window open (the agent may reply)."""
        deadline = time.monotonic() + within
        for customer in customers:
            while True:
                conversation = await self.conversation(customer.conversation_id)
                if conversation is not None and conversation.window.open:
                    break
                assert time.monotonic() < deadline, f"conversation of {customer.wa_id} never appeared open"
                await asyncio.sleep(0.3)

    async def send_text(self, customer: Customer, text: str, key: str | None = None) -> str:
        reply = await self.conversations.SendMessage(cpb.SendMessageRequest(
            workspace_id=self.workspace_id, conversation_id=customer.conversation_id, agent=AGENT,
            idempotency_key=key or uuid.uuid4().hex, text=cpb.TextContent(text=text)), timeout=15)
        return reply.message.id

    # --- orders and stats ---

    async def create_order(self, customer: Customer, key: str) -> opb.Order:
        items = [opb.OrderItem(sku=f"SKU-{i}", name=f"Item {i}", quantity=random.randint(1, 3),
                               unit_price=f"{random.randint(1, 9000) / 100:.2f}")
                 for i in range(random.randint(1, 3))]
        reply = await self.orders.Create(opb.CreateOrderRequest(
            workspace_id=self.workspace_id, conversation_id=customer.conversation_id,
            customer_id=customer.customer_id, items=items, idempotency_key=key,
            created_by=common_pb2.Actor(id=AGENT.id, name=AGENT.name), currency="EUR"), timeout=15)
        return reply.order

    async def change_stage(self, order_id: str, stage: int) -> None:
        await self.orders.ChangeStage(opb.ChangeOrderStageRequest(
            workspace_id=self.workspace_id, order_id=order_id, stage=stage,
            agent=common_pb2.Actor(id=AGENT.id, name=AGENT.name)), timeout=15)

    async def order_stage(self, order_id: str) -> int:
        reply = await self.orders.Get(opb.GetOrderRequest(workspace_id=self.workspace_id, order_id=order_id),
                                      timeout=15)
        return int(reply.order.stage)

    async def recount(self, customer: Customer) -> dict[str, Any]:
        """The customer's stats recounted from the orders service (the source of truth)."""
        orders: list[opb.Order] = []
        cursor = ""
        while True:
            reply = await self.orders.ListByCustomer(opb.ListOrdersByCustomerRequest(
                workspace_id=self.workspace_id, customer_id=customer.customer_id, limit=100, cursor=cursor),
                timeout=15)
            orders.extend(reply.orders)
            cursor = reply.next_cursor
            if not cursor:
                break
        revenue = sum((Decimal(o.total.amount) for o in orders
                       if o.stage not in (opb.ORDER_STAGE_CANCELLED, opb.ORDER_STAGE_RETURNED)), Decimal(0))
        return {"orders": len(orders),
                "delivered": sum(o.stage == opb.ORDER_STAGE_DELIVERED for o in orders),
                "returned": sum(o.stage == opb.ORDER_STAGE_RETURNED for o in orders),
                "cancelled": sum(o.stage == opb.ORDER_STAGE_CANCELLED for o in orders),
                "revenue": revenue}

    async def stats(self, customer: Customer) -> dict[str, Any]:
        try:
            reply = await self.customers.GetStats(kpb.GetCustomerStatsRequest(
                workspace_id=self.workspace_id, customer_id=customer.customer_id), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return {}
            raise
        s = reply.stats
        return {"orders": s.orders, "delivered": s.delivered, "returned": s.returned, "cancelled": s.cancelled,
                "revenue": Decimal(s.revenue.amount or "0")}


# What a client retries: the service or what it needs is away. INTERNAL or UNKNOWN would be a bug (the
# services answer UNAVAILABLE while the database or Kafka is down), so they end the call and are counted.
RETRIED_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def retrying(errors: Counter[str], call: Callable[..., Awaitable[Any]], *args: Any,
                   within: float = 60.0) -> Any:
    """A client's retries: the same request (same idempotency key) again while the service is away."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call(*args)
        except grpc.aio.AioRpcError as exc:
            errors[exc.code().name] += 1
            if exc.code() not in RETRIED_CODES or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def stream_frames(url: str, token: str, connected: asyncio.Event) -> AsyncIterator[tuple[str, str]]:
    """An agent's ``/api/stream``, each frame as (event name, data text) as it arrives; ``connected`` is set
    once the gateway accepted the stream. It ends when the gateway closes the stream."""
    name = ""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client, client.stream(
            "GET", f"{url}/api/stream", headers={"Authorization": f"Bearer {token}",
                                                 "Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, await response.aread()
        connected.set()
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                yield name, line[5:]


class BackgroundLoad:
    """Work an agent does while a test runs (``_run`` until ``stop``), with the calls that failed by kind."""

    def __init__(self, inbox: Inbox, customers: list[Customer], every_s: float) -> None:
        self.inbox = inbox
        self.customers = customers
        self.every_s = every_s
        self.errors: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


class OrderLoad(BackgroundLoad):
    """Creates orders for the customers and moves some of them along the pipeline, while the test runs."""

    PATHS = (
        (opb.ORDER_STAGE_CONFIRMED, opb.ORDER_STAGE_SHIPPED, opb.ORDER_STAGE_DELIVERED),
        (opb.ORDER_STAGE_CANCELLED,),
        (opb.ORDER_STAGE_CONFIRMED, opb.ORDER_STAGE_SHIPPED, opb.ORDER_STAGE_RETURNED),
        (opb.ORDER_STAGE_CONFIRMED,),
        (),
    )

    def __init__(self, inbox: Inbox, customers: list[Customer], every_s: float = 0.4) -> None:
        super().__init__(inbox, customers, every_s)
        self.created = 0
        self.moves = 0

    async def _run(self) -> None:
        open_paths: list[tuple[str, list[int]]] = []
        while not self._stop.is_set():
            try:
                if open_paths and random.random() < 0.6:
                    order_id, path = open_paths.pop(random.randrange(len(open_paths)))
                    await self._move(order_id, path[0])
                    self.moves += 1
                    if len(path) > 1:
                        open_paths.append((order_id, path[1:]))
                else:
                    customer, key = random.choice(self.customers), uuid.uuid4().hex
                    order = await retrying(self.errors, self.inbox.create_order, customer, key)
                    self.created += 1
                    path = list(random.choice(self.PATHS))
                    if path:
                        open_paths.append((order.id, path))
            except grpc.aio.AioRpcError as exc:
                # Counted (a test asserts there are none); the recount reads what the orders service holds,
                # so the stats check stays exact either way.
                self.errors[f"final {exc.code().name}"] += 1
            await asyncio.sleep(self.every_s)

    async def _move(self, order_id: str, stage: int) -> None:
        """A stage change, retried while the service is away. A retry refused as a conflict after an earlier
        try timed out is fine when that try had applied (the order is at the stage): the agent's screen
        shows it so."""
        timed_out_before = self.errors["DEADLINE_EXCEEDED"] + self.errors["UNAVAILABLE"]
        try:
            await retrying(self.errors, self.inbox.change_stage, order_id, stage)
        except grpc.aio.AioRpcError as exc:
            retried = self.errors["DEADLINE_EXCEEDED"] + self.errors["UNAVAILABLE"] > timed_out_before
            if not (retried and exc.code() == grpc.StatusCode.FAILED_PRECONDITION
                    and await self.inbox.order_stage(order_id) == stage):
                raise
            self.errors["retry found it applied"] += 1

class SendLoad(BackgroundLoad):
    """An agent replying (SendMessage) to the customers while the test runs; remembers each message id."""

    def __init__(self, inbox: Inbox, customers: list[Customer], every_s: float = 0.5) -> None:
        super().__init__(inbox, customers, every_s)
        self.sent: dict[str, Customer] = {}
        self.texts: dict[str, str] = {}  # text of each reply -> its message id
        self.unanswered: set[str] = set()  # texts of replies whose SendMessage never succeeded

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            customer = self.customers[n % len(self.customers)]
            key, text = uuid.uuid4().hex, f"reply {n} of {id(self):x}"
            try:
                message_id = await retrying(self.errors, self.inbox.send_text, customer, text, key)
                self.sent[message_id] = customer
                self.texts[text] = message_id
            except grpc.aio.AioRpcError as exc:
                self.errors[f"final {exc.code().name}"] += 1
                self.unanswered.add(text)
            await asyncio.sleep(self.every_s)
