"""The right column (customer panel, customers, orders) and the team list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from litestar import get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2
from inbox.customers.v1 import customers_pb2
from inbox.orders.v1 import orders_pb2
from inbox_core.errors import NotFound
from inbox_gateway import convert
from inbox_gateway import models as m
from inbox_gateway.accounts import Principal
from inbox_gateway.api.common import (
    GatewayDep,
    PrincipalDep,
    actor_fields,
    errors,
    find_conversation,
    one_workspace,
    struct_of,
)
from inbox_gateway.api.inbox import IdempotencyKey
from inbox_gateway.gateway import Gateway

T = TypeVar("T")


def _customer_from_conversation(c: conversations_pb2.Conversation) -> m.Customer:
    """What the conversation knows of its customer, while the customers service has not caught up yet."""
    return m.Customer(id=c.customer.id, workspace_id=c.workspace_id, wa_id=c.customer.wa_id,
                      user_id=c.customer.user_id or None, name=c.customer.name, profile_name=None,
                      phone=c.customer.phone, tags=[], attributes={}, first_seen_at=convert.when(c, "created_at"),
                      last_seen_at=None, updated_at=None)


async def _or_none(call: Awaitable[T]) -> T | None:
    try:
        return await call
    except NotFound:
        return None


@get("/api/conversations/{conversation_id:str}/panel", tags=["customers"],
     summary="The customer panel: profile, stats, orders and the current order", responses=errors(404))
async def get_panel(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str]) -> m.Panel:
    workspace_id, conversation = await find_conversation(gateway, principal, conversation_id)
    customer_id = conversation.customer.id
    # Everything the panel shows, at once.
    customer, stats, orders, workspace = await asyncio.gather(
        _or_none(gateway.upstream.get_customer(workspace_id, customer_id)),
        _or_none(gateway.upstream.customer_stats(workspace_id, customer_id)),
        gateway.upstream.orders_of_customer(workspace_id, customer_id),
        gateway.workspace(workspace_id))
    return m.Panel(
        customer=convert.customer(customer) if customer is not None else _customer_from_conversation(conversation),
        stats=convert.stats(stats or customers_pb2.CustomerStats(), workspace.currency),
        orders=[convert.order(o) for o in orders.orders],
        current_order=convert.order(orders.current_order) if orders.HasField("current_order") else None)


# --- customers -------------------------------------------------------------------------------------------


async def _find_customer(gateway: Gateway, principal: Principal,
                         customer_id: FromPath[str]) -> tuple[str, customers_pb2.Customer]:
    return await gateway.locator.find(f"customer:{customer_id}", principal,
                                 lambda ws: gateway.upstream.get_customer(ws, customer_id))


@get("/api/customers/{customer_id:str}", tags=["customers"], summary="A customer's profile", responses=errors(404))
async def get_customer(gateway: GatewayDep, principal: PrincipalDep, customer_id: FromPath[str]) -> m.Customer:
    _, customer = await _find_customer(gateway, principal, customer_id)
    return convert.customer(customer)


@patch("/api/customers/{customer_id:str}", tags=["customers"], summary="Edit a customer's name, tags or attributes",
       responses=errors(404, 422))
async def update_customer(gateway: GatewayDep, principal: PrincipalDep, customer_id: FromPath[str],
                          data: JSONBody[m.CustomerPatch]) -> m.Customer:
    workspace_id = gateway.locator.home(f"customer:{customer_id}", principal)
    if workspace_id is None:
        workspace_id, _ = await _find_customer(gateway, principal, customer_id)
    request = customers_pb2.UpdateCustomerRequest(workspace_id=workspace_id, customer_id=customer_id,
                                        agent=common_pb2.Actor(**actor_fields(principal)))
    if data.name is not None:
        request.name = data.name.strip()
    if data.tags is not None:
        request.tags.CopyFrom(customers_pb2.TagList(values=list(dict.fromkeys(t.strip() for t in data.tags))))
    if data.attributes is not None:
        request.attributes.CopyFrom(struct_of(data.attributes, "attributes"))
    return convert.customer(await gateway.upstream.update_customer(request))


# --- orders ----------------------------------------------------------------------------------------------


@post("/api/orders", status_code=201, tags=["orders"], summary="Create an order from a conversation",
      responses=errors(404, 422), description="In the workspace's currency, created by the agent; an "
      "Idempotency-Key makes a double submit create one order.")
async def create_order(gateway: GatewayDep, principal: PrincipalDep, data: JSONBody[m.CreateOrderBody],
                       idempotency_key: IdempotencyKey = None) -> m.OrderEnvelope:
    workspace_id, conversation = await find_conversation(gateway, principal, data.conversation_id)
    workspace = await gateway.workspace(workspace_id)
    request = orders_pb2.CreateOrderRequest(
        workspace_id=workspace_id, conversation_id=conversation.id, customer_id=conversation.customer.id,
        items=[orders_pb2.OrderItem(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price)
               for i in data.items],
        note=data.note or "", idempotency_key=idempotency_key or "",
        created_by=common_pb2.Actor(**actor_fields(principal)), currency=workspace.currency)
    if data.shipping is not None:
        s = data.shipping
        request.shipping.CopyFrom(orders_pb2.ShippingAddress(
            name=s.name, phone=s.phone, line1=s.line1, line2=s.line2, city=s.city, region=s.region,
            postal_code=s.postal_code, country=s.country.upper(), instructions=s.instructions))
    return m.OrderEnvelope(order=convert.order(await gateway.upstream.create_order(request)))


@get("/api/orders/{order_id:str}", tags=["orders"], summary="One order", responses=errors(404))
async def get_order(gateway: GatewayDep, principal: PrincipalDep, order_id: FromPath[str]) -> m.Order:
    _, order = await gateway.locator.find(f"order:{order_id}", principal,
                                          lambda ws: gateway.upstream.get_order(ws, order_id))
    return convert.order(order)


@post("/api/orders/{order_id:str}/stage", status_code=200, tags=["orders"], summary="Move an order to a stage",
      responses=errors(404, 409), description="new -> confirmed -> shipped -> delivered, plus cancelled and "
      "returned; an impossible move answers 409 conflict.")
async def change_stage(gateway: GatewayDep, principal: PrincipalDep, order_id: FromPath[str],
                       data: JSONBody[m.StageBody]) -> m.OrderEnvelope:
    workspace_id = gateway.locator.home(f"order:{order_id}", principal)
    if workspace_id is None:
        workspace_id, _ = await gateway.locator.find(f"order:{order_id}", principal,
                                                lambda ws: gateway.upstream.get_order(ws, order_id))
    order = await gateway.upstream.change_stage(orders_pb2.ChangeOrderStageRequest(
        workspace_id=workspace_id, order_id=order_id, stage=convert.STAGE_VALUE[data.stage],
        agent=common_pb2.Actor(**actor_fields(principal))))
    return m.OrderEnvelope(order=convert.order(order))


# --- the team --------------------------------------------------------------------------------------------


@get("/api/agents", tags=["team"], summary="The agents of a workspace and who is online", responses=errors(404))
async def list_agents(
    gateway: GatewayDep, principal: PrincipalDep,
    workspace: Annotated[str | None, QueryParameter(description="Required when the agent belongs to several",
                                               max_length=200)] = None,
) -> m.TeamList:
    workspace_id = one_workspace(principal, workspace)
    members, presence = await asyncio.gather(gateway.accounts.members(workspace_id),
                                             gateway.upstream.get_presence(workspace_id, []))
    online = {a.agent.id for a in presence.agents}
    return m.TeamList(items=[m.TeamMember(id=x.agent.id, name=x.agent.name, role=x.role,  # type: ignore[arg-type]
                                          online=x.agent.id in online) for x in members])
