"""The customers use cases (app.py) and handlers against the real database and Kafka: customers from
WhatsApp messages, agents' edits, and stats from order events (duplicates, replays, rebuilds)."""

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker

from inbox_core.errors import NotFound
from inbox_core.events import Event
from inbox_core.events.customers import Actor, CustomerCreated, CustomerStatsChanged, CustomerUpdated
from inbox_core.events.orders import Money, OrderCreated, OrderSnapshot, OrderStageChanged
from inbox_core.events.whatsapp import MessageReceived, StatusUpdated
from inbox_core.ids import customer_id
from inbox_core.outbox import kafka_publish
from inbox_customers.app import Customers
from inbox_customers.consumers import customer_run, handle_order_event, handle_whatsapp_event, handle_whatsapp_run
from inbox_customers.store import CustomersRepository

Published = Callable[[], Awaitable[list[tuple[str, Event]]]]
NewCustomers = Callable[[], Awaitable[Customers]]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WA = "34600111222"
CID = customer_id("w1", WA)


def message(wa_id: str = WA, name: str | None = "Ana", at: datetime = T0, *, workspace: str | None = "w1",
            origin: str = "live", direction: str = "in", user_id: str | None = None) -> Event:
    payload = MessageReceived(waba_id="waba-1", phone_number_id="pn-1", origin=origin,  # type: ignore[arg-type]
                              direction=direction, wamid=f"wamid.{uuid.uuid4().hex}", wa_id=wa_id,  # type: ignore[arg-type]
                              user_id=user_id, profile_name=name, timestamp=at, type="text", text="hola")
    return Event.of(payload, workspace_id=workspace)


def order_event(oid: str, version: int, stage: str, amount: str = "10.00", customer: str = CID,
                workspace: str = "w1") -> Event:
    snapshot = OrderSnapshot(id=oid, number=1, workspace_id=workspace, customer_id=customer,
                             total=Money(amount=amount, currency="EUR"), stage=stage, created_at=T0, version=version)
    if version == 1:
        return Event.of(OrderCreated(order=snapshot), workspace_id=workspace, id=f"{oid}:v1")
    payload = OrderStageChanged(order=snapshot, from_stage="?", to_stage=stage)
    return Event.of(payload, workspace_id=workspace, id=f"{oid}:v{version}")


async def test_a_first_message_creates_the_customer_and_a_replay_changes_nothing(
    customers: Customers, published: Published
) -> None:
    event = message()
    await handle_whatsapp_event(customers, event)
    customer = await customers.get("w1", CID)
    assert customer.id == customer_id("w1", WA, None)  # the id the conversations service derives too
    assert customer.phone == "+34600111222" and customer.name == "Ana" and customer.wa_id == WA
    assert customer.first_seen_at == T0 == customer.last_seen_at and customer.version == 1
    for _ in range(3):
        await handle_whatsapp_event(customers, event)
    assert (await customers.get("w1", CID)).version == 1
    events = await published()
    assert len(events) == 1
    key, created = events[0]
    assert key == CID and created.type == "customer.created" and created.id == f"{CID}:v1"
    snapshot = created.payload(CustomerCreated).customer
    assert snapshot.phone == "+34600111222" and snapshot.name == "Ana" and snapshot.first_seen_at == T0


async def test_events_that_are_not_a_routed_customer_message_are_skipped(customers: Customers) -> None:
    await handle_whatsapp_event(customers, message(workspace=None))
    status = StatusUpdated(waba_id="waba-1", wamid="wamid.x", status="read", timestamp=T0, wa_id=WA)
    await handle_whatsapp_event(customers, Event.of(status, workspace_id="w1"))
    await handle_whatsapp_event(customers, message(wa_id="", user_id=None))
    assert await customers.repository.customers.docs.count_documents({}) == 0
    # A username-only customer (no wa_id) is known by its business-scoped user id.
    await handle_whatsapp_event(customers, message(wa_id="", user_id="US.123", name="Zoe"))
    zoe = await customers.get("w1", customer_id("w1", None, "US.123"))
    assert zoe.id == customer_id("w1", None, "US.123") and zoe.phone is None and zoe.name == "Zoe"


async def test_an_agent_name_is_never_overwritten_by_a_later_profile_name(
    customers: Customers, published: Published
) -> None:
    await handle_whatsapp_event(customers, message(name="Ana"))
    edited = await customers.update("w1", CID, name="Ana (VIP customer)", by=Actor(id="agent-1", name="Ben"))
    assert edited.name == "Ana (VIP customer)" and edited.name_edited is True
    await handle_whatsapp_event(customers, message(name="Ana María", at=T0 + timedelta(hours=2)))
    customer = await customers.get("w1", CID)
    assert customer.name == "Ana (VIP customer)" and customer.profile_name == "Ana María"
    # Clearing the agent's name gives back the WhatsApp one.
    assert (await customers.update("w1", CID, name="")).name == "Ana María"

    types = [(e.type, e.payload().model_dump().get("changed")) for _, e in await published()]
    assert types == [("customer.created", None), ("customer.updated", ["name", "name_edited"]),
                     ("customer.updated", ["profile_name"]), ("customer.updated", ["name", "name_edited"])]
    by = (await published())[1][1].payload(CustomerUpdated).by
    assert by is not None and by.id == "agent-1"


async def test_seen_times_only_move_outwards_and_history_does_not_bring_back_old_names(customers: Customers) -> None:
    await handle_whatsapp_event(customers, message(name="Ana María", at=T0))
    await handle_whatsapp_event(customers, message(name="Ana (2019)", at=T0 - timedelta(days=400), origin="history"))
    echo = message(name=None, at=T0 + timedelta(days=1), origin="echo", direction="out")
    await handle_whatsapp_event(customers, echo)
    await handle_whatsapp_event(customers, message(name="Ana María", at=T0 - timedelta(hours=1)))
    customer = await customers.get("w1", CID)
    assert customer.first_seen_at == T0 - timedelta(days=400)
    assert customer.last_seen_at == T0  # the business writing is not the customer being seen
    assert customer.name == "Ana María" and customer.version == 1


async def test_a_message_repeating_the_name_writes_no_revision_and_keeps_older_names_out(
    customers: Customers, published: Published
) -> None:
    revisions = customers.repository.customers.revisions
    await handle_whatsapp_event(customers, message(name="Ana", at=T0))
    for hours in (24, 48):
        await handle_whatsapp_event(customers, message(name="Ana", at=T0 + timedelta(hours=hours)))
    assert await revisions.count_documents({}) == 1
    # Older than the newest message with a name (48 h), though newer than the one the name came from.
    await handle_whatsapp_event(customers, message(name="Ana (old phone)", at=T0 + timedelta(hours=12)))
    customer = await customers.get("w1", CID)
    assert customer.name == "Ana" and customer.version == 1 and customer.last_seen_at == T0 + timedelta(hours=48)
    await handle_whatsapp_event(customers, message(name="Ana B.", at=T0 + timedelta(hours=49)))
    assert (await customers.get("w1", CID)).name == "Ana B."
    assert [e.type for _, e in await published()] == ["customer.created", "customer.updated"]


async def test_a_run_of_one_customers_messages_ends_as_one_by_one_with_one_event(
    customers: Customers, published: Published
) -> None:
    """A customer's consecutive messages on the partition, recorded as one (consumers.handle_whatsapp_run):
    the seen times, the name and the profile end as one by one leaves them, in one revision and event."""
    def burst(wa_id: str) -> list[Event]:
        return [message(wa_id, name="Ana", at=T0), message(wa_id, name=None, at=T0 + timedelta(minutes=1)),
                message(wa_id, name="Ana (old)", at=T0 - timedelta(days=3), origin="history"),
                message(wa_id, name="Ana B.", at=T0 + timedelta(minutes=2)),
                message(wa_id, name=None, at=T0 + timedelta(hours=1), origin="echo", direction="out")]

    one, run = "34600000011", "34600000012"
    for event in burst(one):
        await handle_whatsapp_event(customers, event)
    events = burst(run)
    assert {customer_run(e) for e in events} == {("w1", f"wa:{run}")}
    await handle_whatsapp_run(customers, events)
    by_one = await customers.get("w1", customer_id("w1", one))
    by_run = await customers.get("w1", customer_id("w1", run))
    for name in ("name", "profile_name", "first_seen_at", "last_seen_at"):
        assert getattr(by_one, name) == getattr(by_run, name), name
    assert by_run.name == "Ana B." and by_run.first_seen_at == T0 - timedelta(days=3)
    assert by_run.last_seen_at == T0 + timedelta(minutes=2)
    kinds = Counter((key, e.type) for key, e in await published())
    assert kinds == {(by_one.id, "customer.created"): 1, (by_one.id, "customer.updated"): 1,  # "Ana", "Ana B."
                     (by_run.id, "customer.created"): 1}  # straight to "Ana B."
    await handle_whatsapp_run(customers, events)  # redelivered: nothing changes
    assert (await customers.get("w1", by_run.id)).version == by_run.version == 1


async def test_update_tags_attributes_and_workspace_scope(customers: Customers) -> None:
    await handle_whatsapp_event(customers, message())
    updated = await customers.update("w1", CID, tags=["vip", " vip", "wholesale"], attributes={"size": "M", "n": 3})
    assert updated.tags == ["vip", "wholesale"] and updated.attributes == {"size": "M", "n": 3}
    assert updated.name == "Ana" and updated.name_edited is False and updated.version == 2
    same = await customers.update("w1", CID, tags=["vip", "wholesale"])
    assert same.version == 2  # nothing changed: no new version, no event
    assert (await customers.update("w1", CID, tags=[])).tags == []
    for call in (customers.get("w2", CID), customers.update("w2", CID, name="x"), customers.get("w1", "cus_missing")):
        with pytest.raises(NotFound):
            await call


def _stream(n_orders: int) -> list[Event]:
    """Order events of one customer as the orders service publishes them: every version of every order."""
    events: list[Event] = []
    paths = [["new", "confirmed", "shipped", "delivered"], ["new", "cancelled"], ["new", "confirmed"],
             ["new", "confirmed", "shipped", "returned"], ["new"]]
    for i in range(n_orders):
        path = paths[i % len(paths)]
        events.extend(order_event(f"ord_{i}", v, stage, amount=f"{10 + i}.50")
                      for v, stage in enumerate(path, start=1))
    return events


async def test_stats_equal_a_recount_despite_duplicates_replays_and_disorder(
    customers: Customers, new_customers: NewCustomers, published: Published
) -> None:
    await handle_whatsapp_event(customers, message())
    stream = _stream(10)
    for event in stream:
        await handle_order_event(customers, event)
    stats = (await customers.get("w1", CID)).stats
    # The recount, by hand: orders 0-9 end delivered, cancelled, confirmed, returned, new, delivered, ...;
    # revenue is orders 0, 2, 4, 5, 7, 9: 10.50 + 12.50 + 14.50 + 15.50 + 17.50 + 19.50.
    expected = {"orders": 10, "delivered": 2, "returned": 2, "cancelled": 2, "revenue_amount": "90.00",
                "revenue_currency": "EUR"}
    assert stats.model_dump() == expected
    version = (await customers.get("w1", CID)).version

    # The whole stream again, twice, shuffled: nothing counts twice, nothing changes.
    replay = stream * 2
    random.Random(7).shuffle(replay)
    for event in replay:
        await handle_order_event(customers, event)
    assert (await customers.get("w1", CID)).stats.model_dump() == expected
    assert (await customers.get("w1", CID)).version == version

    # Rebuilding into an empty database from the same events, in another order, gives the same numbers.
    rebuilt = await new_customers()
    for event in replay:
        await handle_order_event(rebuilt, event)
    await handle_whatsapp_event(rebuilt, message())
    again = await rebuilt.get("w1", CID)
    assert again.stats.model_dump() == expected and again.name == "Ana" and again.phone == "+34600111222"

    # Stats events: one per change of the numbers, each carrying the stats after it.
    stats_events = [e.payload(CustomerStatsChanged).customer.stats for _, e in await published()
                    if e.type == "customer.stats_changed" and e.id.startswith(f"{CID}:")]
    assert stats_events and stats_events[-1].model_dump() == expected


async def test_concurrent_order_events_for_one_customer_all_count(customers: Customers) -> None:
    await handle_whatsapp_event(customers, message())
    await asyncio.gather(*(handle_order_event(customers, order_event(f"ord_{i}", 1, "new", "1.00")) for i in range(20)))
    customer = await customers.get("w1", CID)
    assert customer.stats.orders == 20 and customer.stats.revenue_amount == "20.00"
    assert len((await customers.repository.get(CID) or {})["orders"]) == 20 and customer.version == 21


async def test_an_order_before_the_first_message_is_kept(customers: Customers) -> None:
    await handle_order_event(customers, order_event("ord_1", 1, "new", "5.00"))
    await handle_whatsapp_event(customers, message())
    customer = await customers.get("w1", CID)
    assert customer.stats.orders == 1 and customer.phone == "+34600111222" and customer.name == "Ana"
    # An order event of another workspace naming this id changes nothing.
    await handle_order_event(customers, order_event("ord_2", 1, "new", customer=CID, workspace="w2"))
    assert (await customers.get("w1", CID)).stats.orders == 1


async def test_a_crash_between_the_write_and_the_publication_loses_no_event(
    customers: Customers, broker: KafkaBroker, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    await handle_whatsapp_event(customers, message())

    async def crash(*_: object) -> None:
        raise asyncio.CancelledError  # the process dies after the write, before Kafka has the event

    monkeypatch.setattr(customers.repository.customers.outbox, "publish", crash)
    with pytest.raises(asyncio.CancelledError):
        await customers.update("w1", CID, name="Ana B.")
    with pytest.raises(asyncio.CancelledError):
        await handle_order_event(customers, order_event("ord_1", 1, "new"))
    assert [e.type for _, e in await published()] == ["customer.created"]

    restarted = CustomersRepository(customers.repository.db, kafka_publish(broker))
    assert await restarted.relay_once(min_age_s=0) == 2
    assert await restarted.relay_once(min_age_s=0) == 0
    events = await published()
    assert Counter(e.id for _, e in events) == {f"{CID}:v1": 1, f"{CID}:v2": 1, f"{CID}:v3": 1}
    assert [e.type for _, e in events] == ["customer.created", "customer.updated", "customer.stats_changed"]
    customer = await Customers(restarted).get("w1", CID)
    assert customer.name == "Ana B." and customer.stats.orders == 1


async def test_compacted_revisions_leave_the_customer_whole_and_take_a_fraction_of_the_space(
    customers: Customers,
) -> None:
    """Every revision copies all of the customer's orders (their size grows with the square of the order
    count); compaction keeps the latest whole and the others' ids, and the customer reads and changes on."""
    from bson import encode

    await handle_whatsapp_event(customers, message())
    for i in range(100):
        await handle_order_event(customers, order_event(f"ord_{i}", 1, "new", "1.00"))
    revisions = customers.repository.customers.revisions

    async def stored_bytes() -> int:
        return sum([len(encode(d)) async for d in revisions.find({})])

    whole = await stored_bytes()
    # A retention of zero: everything published before now that is not the latest.
    assert await customers.repository.customers.compact_once(timedelta(0), limit=1000) == 100
    compacted = await stored_bytes()
    print(f"101 revisions of a customer with 100 orders: {whole / 1024:.0f} KiB whole, "
          f"{compacted / 1024:.1f} KiB compacted")
    assert compacted < whole / 10
    customer = await customers.get("w1", CID)
    assert customer.stats.orders == 100 and customer.version == 101 and customer.name == "Ana"
    await handle_order_event(customers, order_event("ord_100", 1, "new", "1.00"))
    assert (await customers.get("w1", CID)).stats.orders == 101
    assert await revisions.count_documents({"compacted": True}) == 100
