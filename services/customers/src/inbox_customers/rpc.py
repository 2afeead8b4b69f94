"""gRPC servicer of inbox.customers.v1.CustomersService: proto <-> store, nothing else.

Every call is scoped to its workspace_id: a customer of another workspace answers NOT_FOUND."""

from __future__ import annotations

from datetime import datetime

import grpc
from faststream.kafka import KafkaBroker
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from inbox.common.v1 import common_pb2
from inbox.customers.v1 import customers_pb2, customers_pb2_grpc
from inbox_core.events.customers import Actor
from inbox_core.mongo import Document
from inbox_customers.store import CustomersStore

SERVICE_NAME = "inbox.customers.v1.CustomersService"


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def customer_to_proto(customer: Document) -> customers_pb2.Customer:
    attributes = Struct()
    attributes.update(customer.get("attributes") or {})
    return customers_pb2.Customer(
        id=customer["_id"],
        workspace_id=customer["workspace_id"],
        wa_id=customer.get("wa_id") or "",
        user_id=customer.get("user_id") or "",
        name=customer.get("name") or "",
        profile_name=customer.get("profile_name") or "",
        name_edited=bool(customer.get("name_edited")),
        phone=customer.get("phone") or "",
        tags=list(customer.get("tags") or []),
        attributes=attributes,
        first_seen_at=_ts(customer.get("first_seen_at")),
        last_seen_at=_ts(customer.get("last_seen_at")),
        updated_at=_ts(customer.get("updated_at")),
        version=customer["version"],
    )


def stats_to_proto(customer: Document) -> customers_pb2.CustomerStats:
    stats = customer["stats"]
    return customers_pb2.CustomerStats(
        customer_id=customer["_id"],
        orders=stats["orders"],
        delivered=stats["delivered"],
        returned=stats["returned"],
        cancelled=stats["cancelled"],
        revenue=common_pb2.Money(amount=stats["revenue_amount"], currency=stats.get("revenue_currency") or ""),
        updated_at=_ts(customer.get("stats_updated_at") or customer.get("created_at")),
    )


class CustomersRpc(customers_pb2_grpc.CustomersServiceServicer):
    def __init__(self, store: CustomersStore, broker: KafkaBroker) -> None:
        self.store = store
        self.broker = broker

    async def Get(self, request: customers_pb2.GetCustomerRequest,
                  context: grpc.aio.ServicerContext) -> customers_pb2.GetCustomerResponse:
        customer = await self.store.get(request.workspace_id, request.customer_id)
        return customers_pb2.GetCustomerResponse(customer=customer_to_proto(customer))

    async def GetByWaId(self, request: customers_pb2.GetCustomerByWaIdRequest,
                        context: grpc.aio.ServicerContext) -> customers_pb2.GetCustomerByWaIdResponse:
        # A customer is one per workspace: number_id does not change who it is.
        customer = await self.store.get_by_wa_id(request.workspace_id, request.wa_id, request.user_id)
        return customers_pb2.GetCustomerByWaIdResponse(customer=customer_to_proto(customer))

    async def Update(self, request: customers_pb2.UpdateCustomerRequest,
                     context: grpc.aio.ServicerContext) -> customers_pb2.UpdateCustomerResponse:
        customer = await self.store.update(
            request.workspace_id,
            request.customer_id,
            name=request.name if request.HasField("name") else None,
            tags=list(request.tags.values) if request.HasField("tags") else None,
            attributes=json_format.MessageToDict(request.attributes) if request.HasField("attributes") else None,
            by=Actor(id=request.agent.id, name=request.agent.name) if request.agent.id else None,
        )
        return customers_pb2.UpdateCustomerResponse(customer=customer_to_proto(customer))

    async def Search(self, request: customers_pb2.SearchCustomersRequest,
                     context: grpc.aio.ServicerContext) -> customers_pb2.SearchCustomersResponse:
        items, next_cursor = await self.store.search(request.workspace_id, request.query, request.limit,
                                                     request.cursor)
        return customers_pb2.SearchCustomersResponse(items=[customer_to_proto(c) for c in items],
                                                     next_cursor=next_cursor)

    async def GetStats(self, request: customers_pb2.GetCustomerStatsRequest,
                       context: grpc.aio.ServicerContext) -> customers_pb2.GetCustomerStatsResponse:
        customer = await self.store.get(request.workspace_id, request.customer_id)
        return customers_pb2.GetCustomerStatsResponse(stats=stats_to_proto(customer))
