"""OrdersService through a real gRPC server on a free port: the contract as the gateway sees it."""

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from inbox.common.v1 import common_pb2
from inbox.orders.v1 import orders_pb2, orders_pb2_grpc
from inbox_core.grpc_server import ERROR_CODE_KEY
from inbox_core.outbox import kafka_publish
from inbox_orders.app import Orders
from inbox_orders.rpc import SERVICE_NAME, OrdersRpc
from inbox_orders.store import OrdersRepository
from inbox_testkit.ports import free_port
from inbox_testkit.rpc import served_channel

STAGE = orders_pb2.OrderStage


@pytest.fixture
async def stub(orders: Orders) -> AsyncIterator[orders_pb2_grpc.OrdersServiceStub]:
    async with served_channel(orders_pb2_grpc.add_OrdersServiceServicer_to_server, OrdersRpc(orders),
                              SERVICE_NAME) as channel:
        yield orders_pb2_grpc.OrdersServiceStub(channel)


def _create(key: str = "", **changes: object) -> orders_pb2.CreateOrderRequest:
    request = orders_pb2.CreateOrderRequest(
        workspace_id="w1", conversation_id="cnv_1", customer_id="cus_1", currency="EUR", idempotency_key=key,
        items=[orders_pb2.OrderItem(sku="MUG", name="Mug", quantity=2, unit_price="12.5",
                                    line_total="999")],  # ignored on input
        shipping=orders_pb2.ShippingAddress(name="Luis", line1="Calle Mayor 1", city="Madrid", country="ES"),
        note="gift wrap", created_by=common_pb2.Actor(id="agent-ana", name="Ana"),
    )
    for name, value in changes.items():
        setattr(request, name, value)
    return request


async def _status(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    trailing = dict(failed.value.trailing_metadata() or ())
    return failed.value.code(), str(trailing.get(ERROR_CODE_KEY, ""))


async def test_create_get_list_and_change_stage(stub: orders_pb2_grpc.OrdersServiceStub) -> None:
    created = (await stub.Create(_create(key="form-9"))).order
    assert created.number == 1 and created.stage == STAGE.ORDER_STAGE_NEW and created.version == 1
    assert created.total == common_pb2.Money(amount="25.00", currency="EUR")
    assert created.items[0].line_total == "25.00" and created.items[0].unit_price == "12.50"
    assert created.shipping.city == "Madrid" and created.created_by.name == "Ana"
    assert [h.stage for h in created.stage_history] == [STAGE.ORDER_STAGE_NEW]
    again = (await stub.Create(_create(key="form-9"))).order
    assert again.id == created.id

    got = (await stub.Get(orders_pb2.GetOrderRequest(workspace_id="w1", order_id=created.id))).order
    assert got == created

    moved = (await stub.ChangeStage(orders_pb2.ChangeOrderStageRequest(
        workspace_id="w1", order_id=created.id, stage=STAGE.ORDER_STAGE_CONFIRMED,
        agent=common_pb2.Actor(id="agent-ben", name="Ben")))).order
    assert moved.stage == STAGE.ORDER_STAGE_CONFIRMED and moved.version == 2
    assert moved.stage_history[-1].by.name == "Ben" and moved.stage_history[-1].at.seconds > 0

    done = (await stub.Create(_create())).order
    for stage in (STAGE.ORDER_STAGE_CONFIRMED, STAGE.ORDER_STAGE_SHIPPED, STAGE.ORDER_STAGE_DELIVERED):
        await stub.ChangeStage(orders_pb2.ChangeOrderStageRequest(workspace_id="w1", order_id=done.id, stage=stage))
    listed = await stub.ListByCustomer(orders_pb2.ListOrdersByCustomerRequest(workspace_id="w1", customer_id="cus_1"))
    assert [o.id for o in listed.orders] == [done.id, created.id]
    assert listed.current_order.id == created.id and not listed.next_cursor
    none = await stub.ListByCustomer(orders_pb2.ListOrdersByCustomerRequest(workspace_id="w1", customer_id="cus_x"))
    assert not none.orders and not none.HasField("current_order")


async def test_errors_come_out_as_status_codes(stub: orders_pb2_grpc.OrdersServiceStub) -> None:
    order = (await stub.Create(_create())).order
    assert await _status(stub.ChangeStage(orders_pb2.ChangeOrderStageRequest(
        workspace_id="w1", order_id=order.id, stage=STAGE.ORDER_STAGE_DELIVERED))) == (
        grpc.StatusCode.FAILED_PRECONDITION, "conflict")
    assert await _status(stub.Get(orders_pb2.GetOrderRequest(workspace_id="w2", order_id=order.id))) == (
        grpc.StatusCode.NOT_FOUND, "not_found")
    assert await _status(stub.ChangeStage(orders_pb2.ChangeOrderStageRequest(
        workspace_id="w2", order_id=order.id, stage=STAGE.ORDER_STAGE_CONFIRMED))) == (
        grpc.StatusCode.NOT_FOUND, "not_found")
    code, machine = await _status(stub.Create(_create(currency="")))
    assert (code, machine) == (grpc.StatusCode.INVALID_ARGUMENT, "validation_failed")
    bad_item = _create()
    bad_item.items[0].quantity = 0
    assert (await _status(stub.Create(bad_item)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert (await _status(stub.ChangeStage(orders_pb2.ChangeOrderStageRequest(
        workspace_id="w1", order_id=order.id))))[0] == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_database_that_is_down_is_unavailable_not_an_internal_error(
    broker: KafkaBroker, topic: str
) -> None:
    """The caller may retry UNAVAILABLE (the gateway answers 503); INTERNAL would read as a bug."""
    nowhere: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=300, connectTimeoutMS=300)
    down = Orders(OrdersRepository(nowhere["orders_down"], kafka_publish(broker)), topic=topic)
    try:
        async with served_channel(orders_pb2_grpc.add_OrdersServiceServicer_to_server, OrdersRpc(down),
                                  SERVICE_NAME) as channel:
            stub = orders_pb2_grpc.OrdersServiceStub(channel)
            code, machine = await _status(stub.Create(_create("down-1"), timeout=10))
    finally:
        await nowhere.close()
    assert (code, machine) == (grpc.StatusCode.UNAVAILABLE, "unavailable")
