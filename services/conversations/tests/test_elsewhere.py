"""What other services and ingest's syncs say, against the real database and Kafka: orders become
activities, the customers service's copy of the customer, and template syncs."""

from __future__ import annotations

from typing import Any

from conversations_testkit import Env, ago, counted_handlers

from inbox_core.events import Event
from inbox_core.events.customers import CustomerSnapshot, CustomerUpdated
from inbox_core.events.orders import Actor, Money, OrderCreated, OrderSnapshot, OrderStageChanged, StageChange
from inbox_core.events.whatsapp import TemplatesSynced
from inbox_core.ids import customer_id

WA = "34600111222"


async def messages(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    return await env.store.timeline.find({"conversation_id": conversation_id, "kind": "message"}).sort(
        [("at", 1), ("_id", 1)]).to_list(None)


# --- orders, customers, templates -----------------------------------------------------------------------


def order(env: Env, **fields: Any) -> OrderSnapshot:
    base: dict[str, Any] = {
        "id": "ord_1", "number": 1001, "workspace_id": env.workspace, "customer_id": customer_id(env.workspace, WA),
        "conversation_id": env.conversation_id(WA), "total": Money(amount="59.90", currency="EUR"), "stage": "new",
        "created_by": Actor(id="ag_1", name="Grace"), "created_at": ago(minutes=1),
    }
    base.update(fields)
    return OrderSnapshot(**base)


async def test_order_events_become_activities_with_who_did_it(env: Env) -> None:
    await env.deliver(env.message(WA))
    tail = await env.tail(env.topics.conversations)
    created = Event.of(OrderCreated(order=order(env)), workspace_id=env.workspace)
    await env.handlers.on_order_event(created)
    await env.handlers.on_order_event(created)  # redelivered: one activity
    changed = Event.of(OrderStageChanged(
        order=order(env, stage="shipped", stage_history=[
            StageChange(stage="new", at=ago(minutes=1)),
            StageChange(stage="shipped", by=Actor(id="ag_2", name="Linus"), at=ago(seconds=5))]),
        from_stage="new", to_stage="shipped", by=Actor(id="ag_2", name="Linus")), workspace_id=env.workspace)
    await env.handlers.on_order_event(changed)
    acts = await env.store.timeline.find({"kind": "activity"}).sort("at", 1).to_list(None)
    assert [(a["action"], a["actor"]["name"]) for a in acts] == [("order_created", "Grace"),
                                                                  ("order_stage_changed", "Linus")]
    assert acts[1]["details"]["to_stage"] == "shipped" and acts[0]["details"]["order_number"] == 1001
    await tail.wait_for(lambda es: sum(e.type == "activity.created" for e in es) >= 3)
    assert len({e.id for e in tail.events(lambda e: e.type == "activity.created")}) == 2
    # An order naming a conversation of another workspace is not shown there.
    foreign = Event.of(OrderCreated(order=order(env, id="ord_x", workspace_id="ws_other")), workspace_id="ws_other")
    await env.handlers.on_order_event(foreign)
    assert await env.store.timeline.count_documents({"kind": "activity"}) == 2


async def test_an_order_event_is_two_operations_and_touches_no_other_workspace(env: Env) -> None:
    await env.deliver(env.message(WA))
    async with counted_handlers(env) as (handlers, ops):
        await handlers.on_order_event(Event.of(OrderCreated(order=order(env)), workspace_id=env.workspace))
        # The conversation read taking the activity's seq, the activity inserted.
        assert ops.sent == [("findAndModify", "conversations"), ("insert", "timeline")], ops.sent
        before = (await env.conversation(WA))["last_seq"]
        foreign = order(env, id="ord_y", workspace_id="ws_other")  # names this workspace's conversation
        await handlers.on_order_event(Event.of(OrderCreated(order=foreign), workspace_id="ws_other"))
    conv = await env.conversation(WA)
    assert conv["last_seq"] == before  # not even a seq taken from it
    acts = await env.store.timeline.find({"conversation_id": conv["_id"], "kind": "activity"}).to_list(None)
    assert [a["seq"] for a in acts] == [before]


def customer_event(env: Env, name: str, version: int, phone: str = f"+{WA}") -> Event:
    snapshot = CustomerSnapshot(id=customer_id(env.workspace, WA), workspace_id=env.workspace, wa_id=WA,
                                phone=phone, name=name, version=version)
    return Event.of(CustomerUpdated(customer=snapshot), workspace_id=env.workspace)


async def test_customer_name_follows_newer_versions_only(env: Env) -> None:
    await env.deliver(env.message(WA))
    await env.handlers.on_customer_event(customer_event(env, "Ada King", 3))
    await env.handlers.on_customer_event(customer_event(env, "Stale Name", 2))
    conv = await env.conversation(WA)
    assert conv["customer"]["name"] == "Ada King" and conv["customer"]["version"] == 3
    keys = {d["k"] for d in await env.store.repos.search.entries.find({"c": conv["_id"]}).to_list(None)}
    assert f"{env.workspace}|n:king" in keys and f"{env.workspace}|n:stale" not in keys
    # A later profile name from WhatsApp does not override the name the customers service gave.
    await env.deliver(env.message(WA, profile_name="ada"))
    assert (await env.conversation(WA))["customer"]["name"] == "Ada King"


async def test_a_customer_version_that_keeps_the_name_is_four_operations_and_one_event(env: Env) -> None:
    """The copy remembered, the conversations behind it found and updated, then read once for their
    search entries and their events (a name and phone as they were: no search write)."""
    await env.deliver(env.message(WA, profile_name="Ada King"))
    await env.handlers.on_customer_event(customer_event(env, "Ada King", 1))
    tail = await env.tail(env.topics.conversations)
    async with counted_handlers(env) as (handlers, ops):
        again = customer_event(env, "Ada King", 2)  # e.g. only the stats changed
        await handlers.on_customer_event(again)
        assert ops.sent == [("update", "customers"), ("find", "conversations"), ("update", "conversations"),
                            ("find", "conversations")], ops.sent
    conv = await env.conversation(WA)
    assert conv["customer"]["version"] == 2 and conv["customer"]["name"] == "Ada King"
    events = await tail.wait_for(lambda es: any(e.type == "conversation.updated" for e in es))
    assert events[-1].data["conversation"]["customer"]["name"] == "Ada King"
    # A new name: its search entries follow from the same read.
    await env.handlers.on_customer_event(customer_event(env, "Ada Byron", 3))
    keys = {d["k"] for d in await env.store.repos.search.entries.find({"c": conv["_id"]}).to_list(None)}
    assert f"{env.workspace}|n:byron" in keys and f"{env.workspace}|n:king" not in keys


async def test_customer_event_before_the_conversation(env: Env) -> None:
    await env.handlers.on_customer_event(customer_event(env, "Countess Lovelace", 2))
    await env.deliver(env.message(WA))
    conv = await env.conversation(WA)
    assert conv["customer"]["name"] == "Countess Lovelace" and conv["customer"]["version"] == 2


async def test_templates_synced_replace_the_list(env: Env) -> None:
    from inbox.conversations.v1 import content_pb2

    await env.deliver(env.message(WA))  # the number and its business account are known from events
    first = TemplatesSynced(waba_id=env.waba, templates=[
        {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hello"}]},
        {"name": "promo", "language": "es", "status": "PENDING", "category": "MARKETING", "components": []},
    ])
    await env.deliver(Event.of(first, workspace_id=env.workspace, occurred_at=ago(minutes=2)))
    second = TemplatesSynced(waba_id=env.waba, templates=[
        {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hello"}]}])
    await env.deliver(Event.of(second, workspace_id=env.workspace, occurred_at=ago(minutes=1)))
    await env.deliver(Event.of(first, workspace_id=env.workspace, occurred_at=ago(minutes=3)))  # older: ignored
    listed = await env.rpc.ListTemplates(content_pb2.ListTemplatesRequest(workspace_id=env.workspace,
                                                                          number_id=env.number))
    assert [(t.name, t.language, t.status) for t in listed.items] == [("hello_world", "en_US", "APPROVED")]
    assert listed.items[0].components[0]["text"] == "Hello"
    other = await env.rpc.ListTemplates(content_pb2.ListTemplatesRequest(workspace_id="ws_other"))
    assert list(other.items) == []


async def test_templates_synced_in_parts_replace_the_list_once_the_last_part_came(env: Env) -> None:
    """A sync comes in parts (ingest bounds each event): each part's templates are there at once, the ones
    the sync no longer lists go only after its last part, and a part of an older sync changes nothing."""
    from inbox.conversations.v1 import content_pb2

    def tpl(name: str, text: str = "Hi") -> dict[str, Any]:
        return {"name": name, "language": "en_US", "status": "APPROVED", "category": "UTILITY",
                "components": [{"type": "BODY", "text": text}]}

    async def names() -> list[str]:
        listed = await env.rpc.ListTemplates(content_pb2.ListTemplatesRequest(workspace_id=env.workspace,
                                                                              number_id=env.number))
        return [t.name for t in listed.items]

    def part(sync: str, n: int, parts: int, templates: list[dict[str, Any]], at: Any) -> Event:
        synced = TemplatesSynced(waba_id=env.waba, templates=templates, sync_id=sync, part=n, parts=parts,
                                 synced_at=at)
        return Event.of(synced, workspace_id=env.workspace)

    await env.deliver(env.message(WA))
    old, new = ago(minutes=3), ago(minutes=1)
    await env.deliver(part("s1", 0, 1, [tpl("gone"), tpl("kept", "old text")], old))
    assert await names() == ["gone", "kept"]
    await env.deliver(part("s2", 0, 3, [tpl("a_first")], new))
    await env.deliver(part("s2", 1, 3, [tpl("kept", "new text")], new))
    assert await names() == ["a_first", "gone", "kept"], "nothing is forgotten before the last part"
    await env.deliver(part("s1", 0, 2, [tpl("stale")], old))  # an older sync interleaved: ignored
    await env.deliver(part("s2", 2, 3, [tpl("z_last")], new))
    assert await names() == ["a_first", "kept", "z_last"]
    await env.deliver(part("s1", 1, 2, [tpl("kept", "old text")], old))  # its last part, after: ignored
    await env.deliver(part("s2", 1, 3, [tpl("kept", "new text")], new))  # a redelivery: the same
    listed = await env.rpc.ListTemplates(content_pb2.ListTemplatesRequest(workspace_id=env.workspace,
                                                                          number_id=env.number))
    assert [t.name for t in listed.items] == ["a_first", "kept", "z_last"]
    assert listed.items[1].components[0]["text"] == "new text"


async def test_templates_with_meta_examples_are_kept_whole(env: Env) -> None:
    """Meta's examples are nested arrays (``body_text: [["..."]]``), which FerretDB cannot store as a
    document: every template of the list must still arrive, with its components intact."""
    from inbox.conversations.v1 import content_pb2

    await env.deliver(env.message(WA))
    body = {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way.",
            "example": {"body_text": [["Ada", "#1042"]]}}
    synced = TemplatesSynced(waba_id=env.waba, templates=[
        {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hello"}]},
        {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [body]},
    ])
    await env.deliver(Event.of(synced, workspace_id=env.workspace, occurred_at=ago(minutes=1)))
    listed = await env.rpc.ListTemplates(content_pb2.ListTemplatesRequest(workspace_id=env.workspace,
                                                                          number_id=env.number))
    assert [t.name for t in listed.items] == ["hello_world", "order_update"]
    order_update = listed.items[1].components[0]
    assert order_update["text"] == body["text"]
    assert [list(row) for row in order_update["example"]["body_text"]] == [["Ada", "#1042"]]
