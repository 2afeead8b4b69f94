"""gRPC servicer of inbox.customers.v1.CustomersService: proto <-> the use cases (app.py), nothing else.

Every call is scoped to its workspace_id: a customer of another workspace answers NOT_FOUND."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from inbox.common.v1 import common_pb2
from inbox.customers.v1 import customers_pb2, customers_pb2_grpc
from inbox_core.events.customers import Actor
from inbox_customers.app import Customers
from inbox_customers.domain import Customer

SERVICE_NAME = "inbox.customers.v1.CustomersService"


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def customer_to_proto(customer: Customer) -> customers_pb2.Customer:
    attributes = Struct()
    attributes.update(customer.attributes)
    return customers_pb2.Customer(
        id=customer.id,
        workspace_id=customer.workspace_id,
        wa_id=customer.wa_id,
        user_id=customer.user_id or "",
        name=customer.name or "",
        profile_name=customer.profile_name or "",
        name_edited=customer.name_edited,
        phone=customer.phone or "",
        tags=customer.tags,
        attributes=attributes,
        first_seen_at=_ts(customer.first_seen_at),
        last_seen_at=_ts(customer.last_seen_at),
        updated_at=_ts(customer.updated_at),
        version=customer.version,
    )


def stats_to_proto(customer: Customer) -> customers_pb2.CustomerStats:
    stats = customer.stats
    return customers_pb2.CustomerStats(
        customer_id=customer.id,
        orders=stats.orders,
        delivered=stats.delivered,
        returned=stats.returned,
        cancelled=stats.cancelled,
        revenue=common_pb2.Money(amount=stats.revenue_amount, currency=stats.revenue_currency or ""),
        updated_at=_ts(customer.stats_updated_at),
    )


class CustomersRpc(customers_pb2_grpc.CustomersServiceServicer):
    def __init__(self, customers: Customers) -> None:
        self.customers = customers

    async def Get(self, request: customers_pb2.GetCustomerRequest,
                  context: grpc.aio.ServicerContext) -> customers_pb2.GetCustomerResponse:
        customer = await self.customers.get(request.workspace_id, request.customer_id)
        return customers_pb2.GetCustomerResponse(customer=customer_to_proto(customer))

    async def Update(self, request: customers_pb2.UpdateCustomerRequest,
                     context: grpc.aio.ServicerContext) -> customers_pb2.UpdateCustomerResponse:
        customer = await self.customers.update(
            request.workspace_id,
            request.customer_id,
            name=request.name if request.HasField("name") else None,
            tags=list(request.tags.values) if request.HasField("tags") else None,
            attributes=json_format.MessageToDict(request.attributes) if request.HasField("attributes") else None,
            by=Actor(id=request.agent.id, name=request.agent.name) if request.agent.id else None,
        )
        return customers_pb2.UpdateCustomerResponse(customer=customer_to_proto(customer))

    async def GetStats(self, request: customers_pb2.GetCustomerStatsRequest,
                       context: grpc.aio.ServicerContext) -> customers_pb2.GetCustomerStatsResponse:
        customer = await self.customers.get(request.workspace_id, request.customer_id)
        return customers_pb2.GetCustomerStatsResponse(stats=stats_to_proto(customer))
