"""The orders store against the real database and Kafka: creation, numbers, idempotency, the pipeline,
the customer's current order, and the events (none lost by a crash, none doubled)."""

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from faststream.kafka import KafkaBroker

from inbox_core.errors import Conflict, NotFound
from inbox_core.events import Event
from inbox_core.events.orders import OrderCreated, OrderStageChanged
from inbox_orders.domain import ALLOWED_MOVES, ActorIn, ItemIn, NewOrder, Stage
from inbox_orders.store import OrdersStore

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
    store: OrdersStore, read_topic: ReadTopic
) -> None:
    order, created = await store.create(new_order())
    assert created
    assert order["number"] == 1 and order["stage"] == "new" and order["version"] == 1
    assert [i["line_total"] for i in order["items"]] == ["59.97", "5.50"]
    assert order["total"] == "65.47" and order["currency"] == "EUR"
    assert order["stage_history"][0]["stage"] == "new" and order["stage_history"][0]["by"]["id"] == ANA.id
    assert await store.get("w1", order["_id"]) == order

    events = await read_topic()
    assert len(events) == 1
    key, event = events[0]
    assert key == order["_id"] and event.type == "order.created" and event.workspace_id == "w1"
    snapshot = event.payload(OrderCreated).order
    assert snapshot.total.amount == "65.47" and snapshot.number == 1 and snapshot.version == 1
    assert snapshot.customer_id == "cus_1" and snapshot.created_by is not None


async def test_another_workspace_sees_not_found(store: OrdersStore) -> None:
    order, _ = await store.create(new_order())
    with pytest.raises(NotFound):
        await store.get("w2", order["_id"])
    with pytest.raises(NotFound):
        await store.change_stage("w2", order["_id"], Stage.CONFIRMED, ANA)
    with pytest.raises(NotFound):
        await store.get("w1", "ord_missing")
    assert (await store.get("w1", order["_id"]))["stage"] == "new"


async def test_thirty_concurrent_creates_get_distinct_increasing_numbers(store: OrdersStore) -> None:
    results = await asyncio.gather(*(store.create(new_order(customer=f"cus_{i}")) for i in range(30)))
    numbers = sorted(order["number"] for order, _ in results)
    assert numbers == list(range(1, 31))
    other, _ = await store.create(new_order(workspace="w2"))
    assert other["number"] == 1  # per workspace
    later, _ = await store.create(new_order())
    assert later["number"] == 31


async def test_a_double_submit_creates_one_order(store: OrdersStore, read_topic: ReadTopic) -> None:
    first, created = await store.create(new_order(key="form-1"))
    again, created_again = await store.create(new_order(key="form-1"))
    assert created and not created_again and again["_id"] == first["_id"]
    # Concurrent submits of another form: still one order.
    results = await asyncio.gather(*(store.create(new_order(key="form-2")) for _ in range(8)))
    assert len({order["_id"] for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    # The same key in another workspace is another order.
    elsewhere, created_elsewhere = await store.create(new_order(workspace="w2", key="form-1"))
    assert created_elsewhere and elsewhere["_id"] != first["_id"]
    orders, _ = await store.list_by_customer("w1", "cus_1")
    assert len(orders) == 2
    created_events = [e for _, e in await read_topic() if e.type == "order.created"]
    assert len(created_events) == 3


@pytest.mark.parametrize(("current", "target"), list(itertools.product(list(Stage), repeat=2)),
                         ids=lambda s: s.value)
async def test_every_move_through_the_store(store: OrdersStore, current: Stage, target: Stage) -> None:
    order, _ = await store.create(new_order())
    for stage in PATH_TO[current]:
        order = await store.change_stage("w1", order["_id"], stage, ANA)
    assert order["stage"] == current.value
    if target in ALLOWED_MOVES[current]:
        moved = await store.change_stage("w1", order["_id"], target, BEN)
        assert moved["stage"] == target.value and moved["version"] == order["version"] + 1
        assert moved["stage_history"][-1]["stage"] == target.value
        assert moved["stage_history"][-1]["by"] == {"id": BEN.id, "name": BEN.name}
    else:
        with pytest.raises(Conflict):
            await store.change_stage("w1", order["_id"], target, BEN)
        assert await store.get("w1", order["_id"]) == order


async def test_stage_history_and_events_of_a_pipeline(store: OrdersStore, read_topic: ReadTopic) -> None:
    order, _ = await store.create(new_order())
    for stage, agent in ((Stage.CONFIRMED, ANA), (Stage.SHIPPED, BEN), (Stage.DELIVERED, ANA)):
        order = await store.change_stage("w1", order["_id"], stage, agent)
    assert [h["stage"] for h in order["stage_history"]] == ["new", "confirmed", "shipped", "delivered"]
    assert [h["by"]["id"] for h in order["stage_history"]] == [ANA.id, ANA.id, BEN.id, ANA.id]
    ats = [h["at"] for h in order["stage_history"]]
    assert ats == sorted(ats)
    assert order["version"] == 4 and order["final"] is True

    events = [e for _, e in await read_topic()]
    assert [e.type for e in events] == ["order.created"] + ["order.stage_changed"] * 3
    assert [e.id for e in events] == [f"{order['_id']}:v{v}" for v in range(1, 5)]
    last = events[-1].payload(OrderStageChanged)
    assert (last.from_stage, last.to_stage, last.order.version) == ("shipped", "delivered", 4)
    assert last.by is not None and last.by.id == ANA.id


async def test_two_concurrent_changes_cannot_both_apply(store: OrdersStore) -> None:
    order, _ = await store.create(new_order())
    outcomes = await asyncio.gather(
        *(store.change_stage("w1", order["_id"], Stage.CONFIRMED, ANA) for _ in range(10)), return_exceptions=True
    )
    succeeded = [o for o in outcomes if isinstance(o, dict)]
    assert len(succeeded) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, dict))
    final = await store.get("w1", order["_id"])
    assert final["version"] == 2 and [h["stage"] for h in final["stage_history"]] == ["new", "confirmed"]

    # Cancel and ship at once from "confirmed": each is decided on what the other left, never both on one state.
    outcomes = await asyncio.gather(
        store.change_stage("w1", order["_id"], Stage.CANCELLED, ANA),
        store.change_stage("w1", order["_id"], Stage.SHIPPED, BEN),
        return_exceptions=True,
    )
    final = await store.get("w1", order["_id"])
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert final["version"] == 3 and final["stage"] in ("cancelled", "shipped")


async def test_list_by_customer_pages_newest_first_and_finds_the_current_order(store: OrdersStore) -> None:
    ids = [(await store.create(new_order()))[0]["_id"] for _ in range(5)]
    await store.create(new_order(customer="cus_other"))
    assert (await store.current_order("w1", "cus_1"))["_id"] == ids[4]  # type: ignore[index]
    await store.change_stage("w1", ids[4], Stage.CANCELLED, ANA)
    await store.change_stage("w1", ids[3], Stage.CONFIRMED, ANA)
    for stage in (Stage.CONFIRMED, Stage.SHIPPED, Stage.DELIVERED):
        await store.change_stage("w1", ids[2], stage, ANA)
    current = await store.current_order("w1", "cus_1")
    assert current is not None and current["_id"] == ids[3]
    assert await store.current_order("w2", "cus_1") is None

    seen: list[str] = []
    cursor = ""
    while True:
        page, cursor = await store.list_by_customer("w1", "cus_1", limit=2, cursor=cursor)
        seen.extend(o["_id"] for o in page)
        if not cursor:
            break
    assert seen == list(reversed(ids))


async def test_a_crash_between_the_write_and_the_publication_loses_no_event(
    store: OrdersStore, broker: KafkaBroker, read_topic: ReadTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_: object) -> None:
        raise asyncio.CancelledError  # the process dies here: after the write, before Kafka has the event

    monkeypatch.setattr(store.orders.outbox, "publish", crash)
    with pytest.raises(asyncio.CancelledError):
        await store.create(new_order())
    order = (await store.orders.docs.find().to_list())[0]
    with pytest.raises(asyncio.CancelledError):
        await store.change_stage("w1", order["_id"], Stage.CONFIRMED, ANA)
    assert await read_topic() == []

    # After the restart: a new store (a new process) runs its relay.
    restarted = OrdersStore(store.db, broker, topic=store.topic)
    assert await restarted.relay_once(min_age_s=0) == 2
    assert await restarted.relay_once(min_age_s=0) == 0  # published once, then marked
    events = await read_topic()
    ids = Counter(e.id for _, e in events)
    assert ids == {f"{order['_id']}:v1": 1, f"{order['_id']}:v2": 1}
    assert [e.type for _, e in events] == ["order.created", "order.stage_changed"]
    assert {key for key, _ in events} == {order["_id"]}
    assert (await restarted.get("w1", order["_id"]))["stage"] == "confirmed"


async def test_a_change_committed_before_the_projection_was_written_is_still_seen(
    store: OrdersStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_: object) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(store.orders, "materialise", crash)
    with pytest.raises(asyncio.CancelledError):
        await store.create(new_order(key="k"))
    monkeypatch.undo()
    # The retry of the same submission finds the committed order, and a change applies on top of it.
    order, created = await store.create(new_order(key="k"))
    assert not created and order["number"] == 1
    moved = await store.change_stage("w1", order["_id"], Stage.CONFIRMED, ANA)
    assert moved["version"] == 2
    assert (await store.list_by_customer("w1", "cus_1"))[0][0]["stage"] == "confirmed"
