"""gRPC servicer of inbox.orders.v1.OrdersService: proto <-> the use cases (app.py), nothing else.

Errors are raised as inbox_core.errors (NotFound, Conflict -> FAILED_PRECONDITION, ...); the server's
interceptor turns them into status codes."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from inbox.common.v1 import common_pb2
from inbox.orders.v1 import orders_pb2, orders_pb2_grpc
from inbox_core.errors import InvalidRequest
from inbox_core.events.orders import Actor as EventActor
from inbox_core.events.orders import OrderSnapshot
from inbox_orders.app import Orders
from inbox_orders.domain import SHIPPING_FIELDS, ActorIn, ItemIn, NewOrder, Stage

SERVICE_NAME = "inbox.orders.v1.OrdersService"

_STAGE_TO_PROTO = {stage: orders_pb2.OrderStage.Value(f"ORDER_STAGE_{stage.value.upper()}") for stage in Stage}
_PROTO_TO_STAGE = {v: k for k, v in _STAGE_TO_PROTO.items()}


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _actor(actor: EventActor | None) -> common_pb2.Actor | None:
    return common_pb2.Actor(id=actor.id, name=actor.name) if actor else None


def order_to_proto(order: OrderSnapshot) -> orders_pb2.Order:
    out = orders_pb2.Order(
        id=order.id,
        workspace_id=order.workspace_id,
        number=order.number,
        customer_id=order.customer_id,
        conversation_id=order.conversation_id or "",
        items=[orders_pb2.OrderItem(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price.amount,
                                    line_total=i.line_total.amount if i.line_total else "")
               for i in order.items],
        total=common_pb2.Money(amount=order.total.amount, currency=order.total.currency),
        stage=_STAGE_TO_PROTO[Stage(order.stage)],
        stage_history=[orders_pb2.StageChange(stage=_STAGE_TO_PROTO[Stage(h.stage)], by=_actor(h.by), at=_ts(h.at))
                       for h in order.stage_history],
        note=order.note or "",
        created_by=_actor(order.created_by),
        created_at=_ts(order.created_at),
        updated_at=_ts(order.updated_at or order.created_at),
        version=order.version,
    )
    if order.shipping:
        out.shipping.CopyFrom(orders_pb2.ShippingAddress(**{k: str(v) for k, v in order.shipping.items()}))
    return out


class OrdersRpc(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, orders: Orders) -> None:
        self.orders = orders

    async def Create(self, request: orders_pb2.CreateOrderRequest,
                     context: grpc.aio.ServicerContext) -> orders_pb2.CreateOrderResponse:
        shipping = ({name: getattr(request.shipping, name) for name in SHIPPING_FIELDS}
                    if request.HasField("shipping") else {})
        order, _ = await self.orders.create(NewOrder(
            workspace_id=request.workspace_id,
            customer_id=request.customer_id,
            conversation_id=request.conversation_id,
            items=[ItemIn(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price)
                   for i in request.items],
            currency=request.currency,
            created_by=ActorIn(request.created_by.id, request.created_by.name),
            shipping=shipping,
            note=request.note,
            idempotency_key=request.idempotency_key,
        ))
        return orders_pb2.CreateOrderResponse(order=order_to_proto(order))

    async def Get(self, request: orders_pb2.GetOrderRequest,
                  context: grpc.aio.ServicerContext) -> orders_pb2.GetOrderResponse:
        order = await self.orders.get(request.workspace_id, request.order_id)
        return orders_pb2.GetOrderResponse(order=order_to_proto(order))

    async def ListByCustomer(self, request: orders_pb2.ListOrdersByCustomerRequest,
                             context: grpc.aio.ServicerContext) -> orders_pb2.ListOrdersByCustomerResponse:
        if not request.workspace_id or not request.customer_id:
            raise InvalidRequest("workspace_id and customer_id are required")
        page = await self.orders.list_by_customer(request.workspace_id, request.customer_id, request.limit,
                                                  request.cursor)
        reply = orders_pb2.ListOrdersByCustomerResponse(orders=[order_to_proto(o) for o in page.orders],
                                                        next_cursor=page.next_cursor)
        if page.current is not None:
            reply.current_order.CopyFrom(order_to_proto(page.current))
        return reply

    async def ChangeStage(self, request: orders_pb2.ChangeOrderStageRequest,
                          context: grpc.aio.ServicerContext) -> orders_pb2.ChangeOrderStageResponse:
        target = _PROTO_TO_STAGE.get(request.stage)
        if target is None:
            raise InvalidRequest("stage is required", {"field": "stage"})
        by = ActorIn(request.agent.id, request.agent.name) if request.agent.id else None
        order = await self.orders.change_stage(request.workspace_id, request.order_id, target, by)
        return orders_pb2.ChangeOrderStageResponse(order=order_to_proto(order))
