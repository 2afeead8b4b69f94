"""What the fault tests share: a stack whose consumers run as their own processes, Meta's side of the
webhook (signed posts, retried until answered 200, as Meta does), and the inbox read back over gRPC.

Every test sends uniquely numbered webhooks from customers of its own (fresh ``wa_id``s, so fresh
conversations), then compares what was answered 200 with what the inbox shows: each message once,
unread counts and customer stats exact. Each prints what it sent, what it found and the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Self

import grpc
import httpx
from aiokafka.partitioner import murmur2

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as cpb
from inbox.conversations.v1 import conversations_pb2_grpc as cgrpc
from inbox.customers.v1 import customers_pb2 as kpb
from inbox.customers.v1 import customers_pb2_grpc as kgrpc
from inbox.ingest.v1 import ingest_pb2 as ipb
from inbox.ingest.v1 import ingest_pb2_grpc as igrpc
from inbox.orders.v1 import orders_pb2 as opb
from inbox.orders.v1 import orders_pb2_grpc as ogrpc
from inbox_core import ids
from inbox_core.devinfra import free_port, wait_ready
from inbox_core.testing import STACK_SECRETS, ServiceProcess, Stack
from inbox_core.topics import WHATSAPP_COMMANDS
from inbox_sandbox.domain import signature

# The sandbox's default numbers (see services/sandbox/README.md).
NUMBER = "106540352242922"
WABA = "102290129340398"
DISPLAY = "15550783881"
NUMBER_B = "117650463353033"
WABA_B = "213301230451409"
APP_SECRET = STACK_SECRETS["INGEST_META_APP_SECRET"].encode()
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


# --- Meta's side: webhooks ----------------------------------------------------------------------------------


def text_webhook(wa_id: str, name: str, wamid: str, body: str, ts: int | None = None,
                 number: str = NUMBER, waba: str = WABA) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": number},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(ts or int(time.time())), "type": "text",
                      "text": {"body": body}}],
    }
    return _envelope(waba, value)


def multi_text_webhook(messages: list[tuple[str, str, str, str]], number: str = NUMBER, waba: str = WABA) -> bytes:
    """One webhook carrying several messages (Meta batches): (wa_id, name, wamid, body) each."""
    ts = str(int(time.time()))
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": number},
        "contacts": [{"profile": {"name": n}, "wa_id": w} for w, n, _, _ in messages],
        "messages": [{"from": w, "id": m, "timestamp": ts, "type": "text", "text": {"body": b}}
                     for w, _, m, b in messages],
    }
    return _envelope(waba, value)


def status_webhook(wamid: str, status: str, recipient: str, ts: int, number: str = NUMBER,
                   waba: str = WABA) -> bytes:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": recipient}
    if status == "failed":
        item["errors"] = [{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem "
                           "engagement.", "message": "This message was not delivered to maintain healthy "
                           "ecosystem engagement.", "error_data": {"details": "In order to maintain a healthy "
                                                                   "ecosystem engagement, the message failed "
                                                                   "to be delivered."}}]
    elif status in ("sent", "delivered"):
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                           "category": "service"}
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY, "phone_number_id": number},
             "statuses": [item]}
    return _envelope(waba, value)


def _envelope(waba: str, value: dict[str, Any]) -> bytes:
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": waba, "changes": [{"value": value, "field": "messages"}]}]}
    return json.dumps(body, separators=(",", ":")).encode()


def sign(body: bytes) -> str:
    return signature(APP_SECRET, body)


@dataclass
class Meta:
    """Posts signed webhooks to ingest and retries every answer but 200 (and every connection error),
    with a growing pause, as Meta does (for days; here until the deadline given to ``drain``)."""

    url: str
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=15))
    answers: Counter[str] = field(default_factory=Counter)  # "200", "503", "ConnectError", ...
    retried: int = 0
    max_pause_s: float = 2.0

    async def post_once(self, body: bytes) -> str:
        try:
            response = await self.client.post(self.url, content=body, headers={
                "X-Hub-Signature-256": sign(body), "Content-Type": "application/json"})
            answer = str(response.status_code)
        except httpx.HTTPError as exc:
            answer = type(exc).__name__
        self.answers[answer] += 1
        return answer

    async def deliver(self, body: bytes, until: float) -> bool:
        """True once answered 200; False if the deadline passed first."""
        pause = 0.25
        while True:
            if await self.post_once(body) == "200":
                return True
            if time.monotonic() + pause > until:
                return False
            self.retried += 1
            await asyncio.sleep(pause)
            pause = min(self.max_pause_s, pause * 2)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class Customer:
    wa_id: str
    name: str
    conversation_id: str
    customer_id: str


def new_customers(workspace_id: str, count: int, number: str = NUMBER) -> list[Customer]:
    out = []
    for _ in range(count):
        wa_id = "1" + "".join(random.choices("0123456789", k=11))
        out.append(Customer(wa_id, f"Fault Customer {wa_id[-4:]}", ids.conversation_id(workspace_id, number, wa_id),
                            ids.customer_id(workspace_id, wa_id)))
    return out


class WebhookLoad:
    """Uniquely numbered text messages from ``customers``, ``rate`` webhooks per second, each delivered
    (retried) until answered 200. ``accepted`` maps each wamid answered 200 to its customer."""

    def __init__(self, meta: Meta, customers: list[Customer], run: str, rate: float = 25.0,
                 concurrency: int = 24) -> None:
        self.meta = meta
        self.customers = customers
        self.run = run
        self.rate = rate
        self.sent: dict[str, Customer] = {}
        self.accepted: dict[str, Customer] = {}
        self.failed: set[str] = set()
        self._seq = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._producer: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._deadline = time.monotonic() + 3600.0

    def start(self) -> WebhookLoad:
        self._producer = asyncio.create_task(self._produce())
        return self

    async def _produce(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self._seq += 1
            seq = self._seq
            customer = self.customers[seq % len(self.customers)]
            wamid = f"wamid.fault.{self.run}.{seq:06d}"
            self.sent[wamid] = customer
            body = text_webhook(customer.wa_id, customer.name, wamid, f"message {seq} of run {self.run}")
            task = asyncio.create_task(self._deliver(wamid, customer, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            # A steady rate: the n-th webhook leaves at n / rate seconds, however long posts take.
            await asyncio.sleep(max(0.0, started + seq / self.rate - time.monotonic()))

    async def _deliver(self, wamid: str, customer: Customer, body: bytes) -> None:
        async with self._slots:
            if await self.meta.deliver(body, self._deadline):
                self.accepted[wamid] = customer
            else:
                self.failed.add(wamid)

    async def stop_and_drain(self, within: float = 120.0) -> None:
        """Stops sending new messages; retries the unanswered ones until 200 (or ``within`` passes)."""
        self._stop.set()
        if self._producer is not None:
            await self._producer
        self._deadline = time.monotonic() + within
        while self._tasks:
            await asyncio.gather(*list(self._tasks))


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



# --- Comparing what was sent with what the inbox shows --------------------------------------------------------


@dataclass
class Findings:
    inbound_expected: int = 0
    inbound_found: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unread_wrong: list[str] = field(default_factory=list)
    outbound_expected: int = 0
    outbound_found: int = 0
    outbound_missing: list[str] = field(default_factory=list)
    outbound_unsent: list[str] = field(default_factory=list)
    outbound_duplicated: list[str] = field(default_factory=list)
    outbound_unexpected: list[str] = field(default_factory=list)
    stats_wrong: list[str] = field(default_factory=list)

    def problems(self) -> int:
        return (len(self.missing) + len(self.unexpected) + len(self.duplicated) + len(self.unread_wrong)
                + len(self.outbound_missing) + len(self.outbound_unsent) + len(self.outbound_duplicated)
                + len(self.outbound_unexpected) + len(self.stats_wrong))

    def report(self, title: str) -> str:
        lines = [f"[{title}] inbound: sent (answered 200) {self.inbound_expected}, found {self.inbound_found}, "
                 f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
                 f"duplicated {len(self.duplicated)}; unread counts wrong {len(self.unread_wrong)}",
                 f"[{title}] outbound: sent {self.outbound_expected}, found {self.outbound_found}, "
                 f"missing {len(self.outbound_missing)}, never accepted by Meta {len(self.outbound_unsent)}, "
                 f"duplicated {len(self.outbound_duplicated)}, unexpected {len(self.outbound_unexpected)}; "
                 f"customer stats wrong {len(self.stats_wrong)}",
                 f"[{title}] difference: {self.problems()}"]
        for name in ("missing", "unexpected", "duplicated", "unread_wrong", "outbound_missing", "outbound_unsent",
                     "outbound_duplicated", "outbound_unexpected", "stats_wrong"):
            values = getattr(self, name)
            if values:
                lines.append(f"  {name}: {values[:10]}{' ...' if len(values) > 10 else ''}")
        return "\n".join(lines)


async def check_inbox(inbox: Inbox, customers: list[Customer], inbound: dict[str, Customer],
                      outbound: dict[str, Customer] | None = None, stats: bool = False,
                      may_fail: frozenset[str] = frozenset(), sends: SendLoad | None = None) -> Findings:
    """One look at the inbox: every expected inbound wamid once, nothing else inbound, unread counts equal to
    the inbound messages (nobody read them), every outbound message once and accepted by Meta (a wamid and a
    status past pending; failed only for ``may_fail``), and, with ``stats``, each customer's stats equal to a
    recount of its orders. With ``sends``, every outbound message in the conversations is one of its replies
    under the id it was given (or, for a reply whose call never succeeded, at most once): nothing stored
    twice under another id, nothing nobody sent."""
    outbound = outbound or {}
    f = Findings(inbound_expected=len(inbound), outbound_expected=len(outbound))
    for customer in customers:
        expected = {w for w, c in inbound.items() if c is customer}
        expected_out = {m for m, c in outbound.items() if c is customer}
        messages = await inbox.messages(customer.conversation_id)
        ins = Counter(m.wamid for m in messages if m.direction == cpb.DIRECTION_IN)
        outs = Counter(m.id for m in messages if m.direction == cpb.DIRECTION_OUT)
        f.inbound_found += sum(1 for w in ins if w in expected)
        f.missing += sorted(expected - set(ins))
        f.unexpected += sorted(set(ins) - expected)
        f.duplicated += sorted(w for w, n in ins.items() if n > 1)
        f.outbound_found += sum(1 for m in outs if m in expected_out)
        f.outbound_missing += sorted(expected_out - set(outs))
        f.outbound_duplicated += sorted(m for m, n in outs.items() if n > 1)
        if sends is not None:
            texts = Counter(m.text for m in messages if m.direction == cpb.DIRECTION_OUT)
            for m in messages:
                if m.direction != cpb.DIRECTION_OUT:
                    continue
                given = sends.texts.get(m.text)
                if given is not None and given != m.id:
                    f.outbound_unexpected.append(f"{m.id}: {m.text!r} stored again (the reply is {given})")
                elif given is None and (m.text not in sends.unanswered or texts[m.text] > 1):
                    f.outbound_unexpected.append(f"{m.id}: {m.text!r}")
        by_id = {m.id: m for m in messages}
        f.outbound_unsent += sorted(m for m in expected_out if m in by_id and (
            not by_id[m].wamid or by_id[m].status == cpb.MESSAGE_STATUS_PENDING
            or (by_id[m].status == cpb.MESSAGE_STATUS_FAILED and m not in may_fail)))
        conversation = await inbox.conversation(customer.conversation_id)
        unread = conversation.unread_count if conversation is not None else -1
        if unread != len(expected):
            f.unread_wrong.append(f"{customer.conversation_id}: unread {unread}, inbound {len(expected)}")
        if stats:
            recount, kept = await inbox.recount(customer), await inbox.stats(customer)
            if recount["orders"] and recount != kept:
                f.stats_wrong.append(f"{customer.customer_id}: stats {kept}, recount {recount}")
    return f


async def settle(look: Callable[[], Awaitable[Findings]], within: float = 90.0, quiet_s: float = 3.0) -> Findings:
    """Looks until nothing is missing or wrong (consumers catch up after a fault), then once more after
    ``quiet_s`` so that a late duplicate would be seen too; gives the last look at the deadline."""
    deadline = time.monotonic() + within
    while True:
        found = await look()
        if found.problems() == 0:
            await asyncio.sleep(quiet_s)
            return await look()
        if time.monotonic() > deadline:
            return found
        await asyncio.sleep(1.0)


async def say_hello(sandbox_url: str, customers: list[Customer], run: str, number: str = NUMBER) -> dict[str, Customer]:
    """Each customer writes once through the sandbox's simulator, so that the sandbox (like Meta) knows
    their 24-hour window is open and accepts the agent's free-form replies. Retried until answered 200."""
    accepted: dict[str, Customer] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for n, customer in enumerate(customers):
            wamid = f"wamid.hello.{run}.{n}"
            for _ in range(20):
                reply = await client.post(f"{sandbox_url}/sandbox/simulate/text", json={
                    "phone_number_id": number, "wa_id": customer.wa_id, "name": customer.name, "wamid": wamid,
                    "body": "hello"})
                reply.raise_for_status()
                if reply.json().get("status_code") == 200:
                    accepted[wamid] = customer
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError(f"the simulator's hello of {customer.wa_id} was never answered 200")
    return accepted


@dataclass
class Outcome:
    load: WebhookLoad
    orders: OrderLoad
    sends: SendLoad
    hello: dict[str, Customer]
    found: Findings

    def final_errors(self) -> dict[str, int]:
        """Calls of the agent's side (orders, replies) that failed for good: each would be a bug."""
        return {f"{who} {what}": n for who, errors in (("orders", self.orders.errors), ("replies", self.sends.errors))
                for what, n in errors.items() if what.startswith("final")}

    def summary(self) -> str:
        meta = self.load.meta
        return (f"webhooks: {len(self.load.sent)} sent, {len(self.load.accepted)} answered 200, "
                f"{len(self.load.failed)} never; answers {dict(meta.answers)}, {meta.retried} retries; "
                f"{len(self.hello)} hellos; orders created {self.orders.created}, moved {self.orders.moves}, "
                f"gRPC errors {dict(self.orders.errors)}; replies {len(self.sends.sent)}, gRPC errors "
                f"{dict(self.sends.errors)}")


async def under_load(stack: Stack, inbox: Inbox, title: str, fault: Callable[[], Awaitable[None]], *,
                     customers: int = 4, rate: float = 5.0, warmup_s: float = 3.0, after_s: float = 2.0,
                     settle_s: float = 100.0) -> Outcome:
    """Webhooks (retried as Meta does), replies and orders run; ``fault`` runs after ``warmup_s`` (it breaks
    something and repairs it); the load goes on ``after_s`` more, every webhook is delivered, and the inbox
    is compared with what was answered 200 until it matches (or ``settle_s`` passes)."""
    run = uuid.uuid4().hex[:8]
    people = new_customers(inbox.workspace_id, customers)
    hello = await say_hello(stack.url("sandbox"), people, run)
    await inbox.wait_conversations(people)
    meta = Meta(f"{stack.url('ingest')}/webhooks/whatsapp")
    load = WebhookLoad(meta, people, run, rate=rate).start()
    orders = OrderLoad(inbox, people, every_s=0.8).start()
    sends = SendLoad(inbox, people, every_s=1.5).start()
    try:
        await asyncio.sleep(warmup_s)
        await fault()
        await asyncio.sleep(after_s)
    finally:
        await sends.stop()
        await orders.stop()
        await load.stop_and_drain(within=60)
        await meta.aclose()
    inbound = {**hello, **load.accepted}
    # Webhooks never answered 200 fail the test on their own; the inbox then gets one look, not a wait.
    found = await settle(lambda: check_inbox(inbox, people, inbound, sends.sent, stats=True, sends=sends),
                         within=5 if load.failed else settle_s)
    outcome = Outcome(load, orders, sends, hello, found)
    print(outcome.summary())
    print(found.report(title))
    return outcome


async def heal(stack: FaultStack, workspace_id: str) -> str | None:
    """Makes sure the webhook answers 200 before a test starts: a stack left broken by an earlier failed
    test (that test reported it) gets its ingest processes restarted, so that each test shows its own
    fault. Returns what was done, or None."""
    wa_id = "1" + "".join(random.choices("0123456789", k=11))
    meta = Meta(f"{stack.url('ingest')}/webhooks/whatsapp")
    try:
        body = text_webhook(wa_id, "Health probe", f"wamid.probe.{uuid.uuid4().hex}", "probe")
        if await meta.deliver(body, time.monotonic() + 20):
            return None
        for key in ("ingest", "ingest_worker"):
            stack.processes[key].kill()
            await asyncio.to_thread(stack.restart, key)
        if await meta.deliver(body, time.monotonic() + 30):
            return f"the webhook did not answer 200 ({dict(meta.answers)}): ingest restarted"
        raise AssertionError(f"the webhook does not answer 200 even after a restart of ingest: {dict(meta.answers)}")
    finally:
        await meta.aclose()


# --- Tenants and partitions -----------------------------------------------------------------------------------


COMMAND_PARTITIONS = WHATSAPP_COMMANDS.partitions


def command_partition(key: str) -> int:
    """The ``whatsapp.commands.v1`` partition of a key, as the producers' default partitioner picks it."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % COMMAND_PARTITIONS


def customers_on_partition(workspace_id: str, count: int, partition: int, number: str = NUMBER) -> list[Customer]:
    """Fresh customers of ``number`` whose commands (replies to them) go to ``partition``."""
    out: list[Customer] = []
    while len(out) < count:
        [customer] = new_customers(workspace_id, 1, number)
        if command_partition(f"{number}:{customer.wa_id}") == partition:
            out.append(customer)
    return out


@dataclass
class Tenant:
    """A workspace of its own with a sandbox number (and business account) of its own."""

    workspace_id: str
    number: str
    waba: str


async def new_tenant(stack: FaultStack, name: str) -> Tenant:
    number, waba = "".join(random.choices("123456789", k=15)), "".join(random.choices("123456789", k=15))
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{stack.url('sandbox')}/sandbox/numbers", json={
            "phone_number_id": number, "display_phone_number": DISPLAY, "waba_id": waba, "verified_name": name})
        answer.raise_for_status()
    workspace = await asyncio.to_thread(stack.admin, "create-workspace", "--name", name)
    tenant = Tenant(str(workspace["workspace"]["id"]), number, waba)
    inbox = Inbox(stack, tenant.workspace_id)
    try:
        await inbox.connect_number(number, waba)
    finally:
        await inbox.close()
    return tenant


# --- How long the agent's replies take to be accepted by Meta -------------------------------------------------


class ReplyTimer(BackgroundLoad):
    """An agent replying to ``customers`` every ``every_s``; each reply's time from SendMessage to its status in
    the inbox leaving pending (Meta accepted it: a wamid; or failed), by when it was sent."""

    def __init__(self, inbox: Inbox, customers: list[Customer], every_s: float = 0.5) -> None:
        super().__init__(inbox, customers, every_s)
        self.latencies: list[tuple[float, float]] = []  # (sent at, seconds to leave pending)
        self.pending: dict[str, tuple[Customer, float]] = {}
        self.failed: list[str] = []
        self._give_up_at = float("inf")

    async def _run(self) -> None:
        n = 0
        next_send = time.monotonic()
        while not self._stop.is_set() or self.pending:
            now = time.monotonic()
            if not self._stop.is_set() and now >= next_send:
                n += 1
                customer = self.customers[n % len(self.customers)]
                message_id = await retrying(self.errors, self.inbox.send_text, customer, f"timed reply {n}")
                self.pending[message_id] = (customer, now)
                next_send = now + self.every_s
            for customer in {c.conversation_id: c for c, _ in self.pending.values()}.values():
                for message in await retrying(self.errors, self.inbox.messages, customer.conversation_id):
                    if message.id in self.pending and message.status != cpb.MESSAGE_STATUS_PENDING:
                        _, sent_at = self.pending.pop(message.id)
                        self.latencies.append((sent_at, time.monotonic() - sent_at))
                        if message.status == cpb.MESSAGE_STATUS_FAILED:
                            self.failed.append(message.id)
            if self._stop.is_set() and self.pending and time.monotonic() > self._give_up_at:
                break
            # Each look reads whole timelines (a scan on FerretDB): often enough to time replies, no more.
            await asyncio.sleep(0.25)

    async def stop(self, within: float = 60.0) -> None:
        """Stops replying; waits (up to ``within``) for the replies still pending."""
        self._give_up_at = time.monotonic() + within
        await super().stop()

    def worst(self, since: float = 0.0, until: float = float("inf")) -> float:
        return max((s for at, s in self.latencies if since <= at <= until), default=0.0)

    def summary(self) -> str:
        seconds = sorted(s for _, s in self.latencies)
        if not seconds:
            return f"replies: none accepted, {len(self.pending)} pending"
        return (f"replies: {len(seconds)} left pending (p50 {seconds[len(seconds) // 2]:.2f} s, "
                f"max {seconds[-1]:.2f} s), {len(self.failed)} failed, {len(self.pending)} still pending")
