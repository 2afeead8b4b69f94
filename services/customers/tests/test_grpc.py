"""CustomersService through a real gRPC server on a free port: the contract as the gateway sees it."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from inbox.common.v1 import common_pb2
from inbox.customers.v1 import customers_pb2, customers_pb2_grpc
from inbox_core.events import Event
from inbox_core.events.orders import Money, OrderCreated, OrderSnapshot
from inbox_core.events.whatsapp import MessageReceived
from inbox_core.grpc_server import ERROR_CODE_KEY
from inbox_core.ids import customer_id
from inbox_customers.app import Customers
from inbox_customers.consumers import handle_order_event, handle_whatsapp_event
from inbox_customers.rpc import SERVICE_NAME, CustomersRpc
from inbox_testkit.rpc import served_channel

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WA = "34600111222"
CID = customer_id("w1", WA)


@pytest.fixture
async def stub(customers: Customers) -> AsyncIterator[customers_pb2_grpc.CustomersServiceStub]:
    async with served_channel(customers_pb2_grpc.add_CustomersServiceServicer_to_server, CustomersRpc(customers),
                              SERVICE_NAME) as channel:
        yield customers_pb2_grpc.CustomersServiceStub(channel)


async def _status(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    trailing = dict(failed.value.trailing_metadata() or ())
    return failed.value.code(), str(trailing.get(ERROR_CODE_KEY, ""))


async def test_get_update_and_stats(
    customers: Customers, stub: customers_pb2_grpc.CustomersServiceStub
) -> None:
    message = MessageReceived(waba_id="waba-1", phone_number_id="pn-1", wamid=f"wamid.{uuid.uuid4().hex}", wa_id=WA,
                              profile_name="Ana García", timestamp=T0, type="text", text="hola")
    await handle_whatsapp_event(customers, Event.of(message, workspace_id="w1"))
    snapshot = OrderSnapshot(id="ord_1", number=1, workspace_id="w1", customer_id=CID,
                             total=Money(amount="42.00", currency="EUR"), stage="new", created_at=T0)
    await handle_order_event(customers, Event.of(OrderCreated(order=snapshot), workspace_id="w1", id="ord_1:v1"))

    got = (await stub.Get(customers_pb2.GetCustomerRequest(workspace_id="w1", customer_id=CID))).customer
    assert (got.id, got.wa_id, got.phone, got.name, got.name_edited) == (CID, WA, "+34600111222", "Ana García", False)
    assert got.first_seen_at.ToDatetime(tzinfo=UTC) == T0 and got.version == 2

    attributes = Struct()
    attributes.update({"size": "M", "newsletter": True})
    updated = (await stub.Update(customers_pb2.UpdateCustomerRequest(
        workspace_id="w1", customer_id=CID, agent=common_pb2.Actor(id="agent-1", name="Ben"),
        name="Ana (VIP)", tags=customers_pb2.TagList(values=["vip"]), attributes=attributes))).customer
    assert updated.name == "Ana (VIP)" and updated.name_edited and updated.profile_name == "Ana García"
    assert list(updated.tags) == ["vip"]
    assert json_format.MessageToDict(updated.attributes) == {"size": "M", "newsletter": True}
    # Absent fields are left alone; present-but-empty tags clear them.
    cleared = (await stub.Update(customers_pb2.UpdateCustomerRequest(
        workspace_id="w1", customer_id=CID, tags=customers_pb2.TagList()))).customer
    assert list(cleared.tags) == [] and cleared.name == "Ana (VIP)" and cleared.attributes == updated.attributes


    stats = (await stub.GetStats(customers_pb2.GetCustomerStatsRequest(workspace_id="w1", customer_id=CID))).stats
    assert (stats.customer_id, stats.orders, stats.delivered, stats.cancelled) == (CID, 1, 0, 0)
    assert stats.revenue == common_pb2.Money(amount="42.00", currency="EUR")


async def test_another_workspace_and_bad_requests(customers: Customers,
                                                  stub: customers_pb2_grpc.CustomersServiceStub) -> None:
    message = MessageReceived(waba_id="waba-1", wamid="wamid.1", wa_id=WA, profile_name="Ana", timestamp=T0)
    await handle_whatsapp_event(customers, Event.of(message, workspace_id="w1"))
    not_found = (grpc.StatusCode.NOT_FOUND, "not_found")
    assert await _status(stub.Get(customers_pb2.GetCustomerRequest(workspace_id="w2", customer_id=CID))) == not_found
    assert await _status(stub.GetStats(customers_pb2.GetCustomerStatsRequest(
        workspace_id="w2", customer_id=CID))) == not_found
    assert await _status(stub.Update(customers_pb2.UpdateCustomerRequest(
        workspace_id="w2", customer_id=CID, name="x"))) == not_found
    bad = Struct()
    bad.update({"a.b": 1})
    assert await _status(stub.Update(customers_pb2.UpdateCustomerRequest(
        workspace_id="w1", customer_id=CID, attributes=bad))) == (grpc.StatusCode.INVALID_ARGUMENT, "validation_failed")
    big = Struct()
    big.update({"notes": "x" * 2_000})
    assert await _status(stub.Update(customers_pb2.UpdateCustomerRequest(
        workspace_id="w1", customer_id=CID, attributes=big))) == (grpc.StatusCode.INVALID_ARGUMENT, "validation_failed")
