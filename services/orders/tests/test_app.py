"""The orders use cases (app.py) over their repository, against the real database and Kafka: creation,
numbers, idempotency, the pipeline, the customer's current order, and the events (none lost by a crash,
none doubled)."""

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from faststream.kafka import KafkaBroker

from inbox_core.errors import Conflict, NotFound
from inbox_core.events import Event
from inbox_core.events.orders import Actor, Money, OrderCreated, OrderSnapshot, OrderStageChanged
from inbox_core.outbox import kafka_publish
from inbox_orders.app import Orders
from inbox_orders.domain import ALLOWED_MOVES, FINAL_STAGES, ActorIn, ItemIn, NewOrder, Stage
from inbox_orders.store import OrdersRepository

ReadTopic = Callable[[], Awaitable[list[tuple[str, Event]]]]
ANA = ActorIn("agent-ana", "Ana")
BEN = ActorIn("agent-ben", "Ben")
# A shortest way from "new" to each stage, to test a move from any stage.
PATH_TO = {
    Stage.NEW: [], Stage.CONFIRMED: [Stage.CONFIRMED], Stage.SHIPPED: [Stage.CONFIRMED, Stage.SHIPPED],
    Stage.DELIVERED: [Stage.CONFIRMED, Stage.SHIPPED, Stage.DELIVERED], Stage.CANCELLED: [Stage.CANCELLED],
    Stage.RETURNED: [Stage.CONFIRMED, Stage.SHIPPED, Stage.RETURNED],
}


def new_order(workspace: str = "w1", customer: str = "cus_1", key: str = "", **changes: object) -> NewOrder:
    fields: dict[str, object] = {
        "workspace_id": workspace, "customer_id": customer, "conversation_id": "cnv_1",
        "items": [ItemIn("TSHIRT-M", "T-shirt M", 3, "19.99"), ItemIn("CAP", "Cap", 1, "5.5")],
        "currency": "EUR", "created_by": ANA, "shipping": {"name": "Luis", "city": "Madrid", "country": "ES"},
        "note": "ring twice", "idempotency_key": key,
    }
    fields.update(changes)
    return NewOrder(**fields)  # type: ignore[arg-type]


async def test_create_computes_totals_and_publishes_the_created_event(
    orders: Orders, read_topic: ReadTopic
) -> None:
    order, created = await orders.create(new_order())
    assert created
    assert order.number == 1 and order.stage == "new" and order.version == 1
    assert [i.line_total.amount for i in order.items if i.line_total] == ["59.97", "5.50"]
    assert order.total == Money(amount="65.47", currency="EUR")
    assert order.stage_history[0].stage == "new" and order.stage_history[0].by == Actor(id=ANA.id, name=ANA.name)
    assert await orders.get("w1", order.id) == order

    events = await read_topic()
    assert len(events) == 1
    key, event = events[0]
    assert key == order.id and event.type == "order.created" and event.workspace_id == "w1"
    snapshot = event.payload(OrderCreated).order
    assert snapshot.total.amount == "65.47" and snapshot.number == 1 and snapshot.version == 1
    assert snapshot.customer_id == "cus_1" and snapshot.created_by is not None


async def test_another_workspace_sees_not_found(orders: Orders) -> None:
    order, _ = await orders.create(new_order())
    with pytest.raises(NotFound):
        await orders.get("w2", order.id)
    with pytest.raises(NotFound):
        await orders.change_stage("w2", order.id, Stage.CONFIRMED, ANA)
    with pytest.raises(NotFound):
        await orders.get("w1", "ord_missing")
    assert (await orders.get("w1", order.id)).stage == "new"


async def test_thirty_concurrent_creates_get_distinct_increasing_numbers(orders: Orders) -> None:
    results = await asyncio.gather(*(orders.create(new_order(customer=f"cus_{i}")) for i in range(30)))
    numbers = sorted(order.number for order, _ in results)
    assert numbers == list(range(1, 31))
    other, _ = await orders.create(new_order(workspace="w2"))
    assert other.number == 1  # per workspace
    later, _ = await orders.create(new_order())
    assert later.number == 31


async def test_a_double_submit_creates_one_order(orders: Orders, read_topic: ReadTopic) -> None:
    first, created = await orders.create(new_order(key="form-1"))
    again, created_again = await orders.create(new_order(key="form-1"))
    assert created and not created_again and again.id == first.id
    # Concurrent submits of another form: still one order.
    results = await asyncio.gather(*(orders.create(new_order(key="form-2")) for _ in range(8)))
    assert len({order.id for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    # The same key in another workspace is another order.
    elsewhere, created_elsewhere = await orders.create(new_order(workspace="w2", key="form-1"))
    assert created_elsewhere and elsewhere.id != first.id
    assert len((await orders.list_by_customer("w1", "cus_1")).orders) == 2
    # A publication the request's timeout cut short (a loaded machine) is the relay's: run it, then every
    # order has its one order.created (by id: a cut-short publication may have gone out already).
    await orders.repository.orders.outbox.relay_once(grace=timedelta(0))
    created_events = {e.id for _, e in await read_topic() if e.type == "order.created"}
    assert len(created_events) == 3


@pytest.mark.parametrize(("current", "target"), list(itertools.product(list(Stage), repeat=2)),
                         ids=lambda s: s.value)
async def test_every_move_through_the_store(orders: Orders, current: Stage, target: Stage) -> None:
    order, _ = await orders.create(new_order())
    for stage in PATH_TO[current]:
        order = await orders.change_stage("w1", order.id, stage, ANA)
    assert order.stage == current.value
    if target in ALLOWED_MOVES[current]:
        moved = await orders.change_stage("w1", order.id, target, BEN)
        assert moved.stage == target.value and moved.version == order.version + 1
        assert moved.stage_history[-1].stage == target.value
        assert moved.stage_history[-1].by == Actor(id=BEN.id, name=BEN.name)
    else:
        with pytest.raises(Conflict):
            await orders.change_stage("w1", order.id, target, BEN)
        assert await orders.get("w1", order.id) == order


async def test_stage_history_and_events_of_a_pipeline(orders: Orders, read_topic: ReadTopic) -> None:
    order, _ = await orders.create(new_order())
    for stage, agent in ((Stage.CONFIRMED, ANA), (Stage.SHIPPED, BEN), (Stage.DELIVERED, ANA)):
        order = await orders.change_stage("w1", order.id, stage, agent)
    assert [h.stage for h in order.stage_history] == ["new", "confirmed", "shipped", "delivered"]
    assert [h.by.id for h in order.stage_history if h.by] == [ANA.id, ANA.id, BEN.id, ANA.id]
    ats = [h.at for h in order.stage_history]
    assert ats == sorted(ats)
    assert order.version == 4 and Stage(order.stage) in FINAL_STAGES

    events = [e for _, e in await read_topic()]
    assert [e.type for e in events] == ["order.created"] + ["order.stage_changed"] * 3
    assert [e.id for e in events] == [f"{order.id}:v{v}" for v in range(1, 5)]
    last = events[-1].payload(OrderStageChanged)
    assert (last.from_stage, last.to_stage, last.order.version) == ("shipped", "delivered", 4)
    assert last.by is not None and last.by.id == ANA.id


async def test_two_concurrent_changes_cannot_both_apply(orders: Orders) -> None:
    order, _ = await orders.create(new_order())
    outcomes = await asyncio.gather(
        *(orders.change_stage("w1", order.id, Stage.CONFIRMED, ANA) for _ in range(10)), return_exceptions=True
    )
    succeeded = [o for o in outcomes if isinstance(o, OrderSnapshot)]
    assert len(succeeded) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, OrderSnapshot))
    final = await orders.get("w1", order.id)
    assert final.version == 2 and [h.stage for h in final.stage_history] == ["new", "confirmed"]

    # Cancel and ship at once from "confirmed": each is decided on what the other left, never both on one state.
    outcomes = await asyncio.gather(
        orders.change_stage("w1", order.id, Stage.CANCELLED, ANA),
        orders.change_stage("w1", order.id, Stage.SHIPPED, BEN),
        return_exceptions=True,
    )
    final = await orders.get("w1", order.id)
    assert sum(isinstance(o, OrderSnapshot) for o in outcomes) == 1
    assert final.version == 3 and final.stage in ("cancelled", "shipped")


async def test_list_by_customer_pages_newest_first_and_finds_the_current_order(orders: Orders) -> None:
    ids = [(await orders.create(new_order()))[0].id for _ in range(5)]
    await orders.create(new_order(customer="cus_other"))
    assert (await orders.list_by_customer("w1", "cus_1")).current.id == ids[4]  # type: ignore[union-attr]
    await orders.change_stage("w1", ids[4], Stage.CANCELLED, ANA)
    await orders.change_stage("w1", ids[3], Stage.CONFIRMED, ANA)
    for stage in (Stage.CONFIRMED, Stage.SHIPPED, Stage.DELIVERED):
        await orders.change_stage("w1", ids[2], stage, ANA)
    current = (await orders.list_by_customer("w1", "cus_1")).current
    assert current is not None and current.id == ids[3]
    assert (await orders.list_by_customer("w2", "cus_1")).current is None

    seen: list[str] = []
    cursor = ""
    while True:
        page = await orders.list_by_customer("w1", "cus_1", limit=2, cursor=cursor)
        cursor = page.next_cursor
        seen.extend(o.id for o in page.orders)
        if not cursor:
            break
    assert seen == list(reversed(ids))


async def test_a_crash_between_the_write_and_the_publication_loses_no_event(
    orders: Orders, broker: KafkaBroker, read_topic: ReadTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_: object) -> None:
        raise asyncio.CancelledError  # the process dies here: after the write, before Kafka has the event

    monkeypatch.setattr(orders.repository.orders.outbox, "publish", crash)
    with pytest.raises(asyncio.CancelledError):
        await orders.create(new_order())
    order_id = (await orders.repository.orders.docs.find().to_list())[0]["_id"]
    with pytest.raises(asyncio.CancelledError):
        await orders.change_stage("w1", order_id, Stage.CONFIRMED, ANA)
    assert await read_topic() == []

    # After the restart: a new repository (a new process) runs its relay.
    restarted = OrdersRepository(orders.repository.db, kafka_publish(broker))
    assert await restarted.relay_once(min_age_s=0) == 2
    assert await restarted.relay_once(min_age_s=0) == 0  # published once, then marked
    events = await read_topic()
    ids = Counter(e.id for _, e in events)
    assert ids == {f"{order_id}:v1": 1, f"{order_id}:v2": 1}
    assert [e.type for _, e in events] == ["order.created", "order.stage_changed"]
    assert {key for key, _ in events} == {order_id}
    assert (await Orders(restarted).get("w1", order_id)).stage == "confirmed"


async def test_a_change_committed_before_the_projection_was_written_is_still_seen(
    orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_: object) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(orders.repository.orders, "materialise", crash)
    with pytest.raises(asyncio.CancelledError):
        await orders.create(new_order(key="k"))
    monkeypatch.undo()
    # The retry of the same submission finds the committed order, and a change applies on top of it.
    order, created = await orders.create(new_order(key="k"))
    assert not created and order.number == 1
    moved = await orders.change_stage("w1", order.id, Stage.CONFIRMED, ANA)
    assert moved.version == 2
    assert (await orders.list_by_customer("w1", "cus_1")).orders[0].stage == "confirmed"
