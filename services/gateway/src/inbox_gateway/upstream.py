"""The services behind the gateway, over gRPC: one channel per service, a deadline on every call, and
gRPC failures turned into docs/api.md's errors.

- A status with the ``inbox-error-code`` trailing metadata (set by ``inbox_core.grpc_server`` for every
  InboxError) keeps that machine code, with the HTTP status of the matching error class (so a
  FAILED_PRECONDITION ``window_closed`` is 409 ``window_closed``, an INVALID_ARGUMENT ``validation_failed``
  is 422).
- Otherwise the status maps through ``inbox_core.errors.GRPC_TO_HTTP``.
- A service that is down (UNAVAILABLE), slow (DEADLINE_EXCEEDED) or broken (INTERNAL, UNKNOWN,
  UNIMPLEMENTED, ...) is 503 ``unavailable``: safe to retry, never a 500 and never a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import grpc

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import content_pb2, conversations_pb2, conversations_pb2_grpc
from inbox.customers.v1 import customers_pb2, customers_pb2_grpc
from inbox.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from inbox.orders.v1 import orders_pb2, orders_pb2_grpc
from inbox.presence.v1 import presence_pb2, presence_pb2_grpc
from inbox_core.errors import (
    GRPC_TO_HTTP,
    Conflict,
    Forbidden,
    InboxError,
    InvalidRequest,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
    ValidationFailed,
    WindowClosed,
)
from inbox_core.grpc_client import channel
from inbox_core.grpc_server import ERROR_CODE_KEY, ERROR_DETAILS_KEY
from inbox_gateway.auth import Unauthenticated
from inbox_gateway.settings import GatewaySettings

log = logging.getLogger("inbox.gateway.upstream")

T = TypeVar("T")

_CLASS_OF_CODE: dict[str, type[InboxError]] = {
    cls.code: cls for cls in (InvalidRequest, ValidationFailed, NotFound, Forbidden, Conflict, WindowClosed,
                              TooLarge, RateLimited, Unavailable, Unauthenticated)
}
_CLASS_OF_HTTP: dict[int, type[InboxError]] = {
    400: InvalidRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 409: Conflict, 413: TooLarge,
    422: ValidationFailed, 429: RateLimited, 503: Unavailable,
}


def error_code(exc: grpc.aio.AioRpcError) -> str | None:
    return _trailing(exc, ERROR_CODE_KEY)


def error_details(exc: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The service error's details (inbox_core.grpc_server), or none when absent or unreadable."""
    raw = _trailing(exc, ERROR_DETAILS_KEY)
    try:
        details = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def _trailing(exc: grpc.aio.AioRpcError, name: str) -> str | None:
    for key, value in exc.trailing_metadata() or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def rpc_error(exc: grpc.aio.AioRpcError, service: str) -> InboxError:
    """The API error for a failed call to ``service``."""
    status = exc.code()
    mapped = GRPC_TO_HTTP.get(status)
    # UNAUTHENTICATED from a service means the gateway's own call was refused: nothing the client can fix.
    if mapped is None or mapped[0] == 503 or status == grpc.StatusCode.UNAUTHENTICATED:
        if status not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            log.error("%s answered %s: %s", service, status.name, exc.details())
        return Unavailable(f"the {service} service is unavailable; retry shortly", {"service": service})
    http, code = mapped
    machine = error_code(exc)
    cls = _CLASS_OF_CODE.get(machine or "") or _CLASS_OF_HTTP.get(http, InvalidRequest)
    return cls(exc.details() or code, error_details(exc), code=machine or code)


async def _call(service: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise rpc_error(exc, service) from None


class Upstream:
    """Typed calls to the services; each one with the deadline of ``INBOX_GRPC_DEADLINE_S``."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.deadline = settings.inbox.grpc_deadline_s
        self.media_deadline = settings.media_deadline_s
        self.targets = {"conversations": settings.conversations_target, "customers": settings.customers_target,
                        "orders": settings.orders_target, "presence": settings.presence_target,
                        "ingest": settings.ingest_target}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.conversations: Any = None
        self.customers: Any = None
        self.orders: Any = None
        self.presence: Any = None
        self.ingest: Any = None

    async def start(self) -> None:
        """Opens the channels (inside the running event loop, as grpc.aio requires)."""
        self._channels = {name: channel(target) for name, target in self.targets.items()}
        self.conversations = conversations_pb2_grpc.ConversationsServiceStub(self._channels["conversations"])
        self.customers = customers_pb2_grpc.CustomersServiceStub(self._channels["customers"])
        self.orders = orders_pb2_grpc.OrdersServiceStub(self._channels["orders"])
        self.presence = presence_pb2_grpc.PresenceServiceStub(self._channels["presence"])
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self._channels["ingest"])

    async def stop(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels.values()), return_exceptions=True)

    # --- conversations ------------------------------------------------------------------------------------

    async def list_conversations(
            self, request: conversations_pb2.ListConversationsRequest) -> conversations_pb2.ListConversationsResponse:
        return await _call("conversations", self.conversations.ListConversations(request, timeout=self.deadline))

    async def get_conversation(self, workspace_id: str, conversation_id: str,
                               agent_id: str = "") -> conversations_pb2.Conversation:
        """The conversation; with ``agent_id``, its unseen_mentions are that agent's."""
        request = conversations_pb2.GetConversationRequest(workspace_id=workspace_id, conversation_id=conversation_id,
                                                           agent_id=agent_id)
        response: conversations_pb2.GetConversationResponse = await _call(
            "conversations", self.conversations.GetConversation(request, timeout=self.deadline))
        return response.conversation

    async def get_timeline(
            self, request: conversations_pb2.GetTimelineRequest) -> conversations_pb2.GetTimelineResponse:
        return await _call("conversations", self.conversations.GetTimeline(request, timeout=self.deadline))

    async def send_message(self, request: conversations_pb2.SendMessageRequest) -> conversations_pb2.Message:
        response: conversations_pb2.SendMessageResponse = await _call(
            "conversations", self.conversations.SendMessage(request, timeout=self.deadline))
        return response.message

    async def send_template(self, request: conversations_pb2.SendTemplateRequest) -> conversations_pb2.Message:
        response: conversations_pb2.SendTemplateResponse = await _call(
            "conversations", self.conversations.SendTemplate(request, timeout=self.deadline))
        return response.message

    async def add_note(self, request: conversations_pb2.AddNoteRequest) -> conversations_pb2.Note:
        response: conversations_pb2.AddNoteResponse = await _call(
            "conversations", self.conversations.AddNote(request, timeout=self.deadline))
        return response.note

    async def assign(self, request: conversations_pb2.AssignRequest) -> conversations_pb2.Conversation:
        response: conversations_pb2.AssignResponse = await _call(
            "conversations", self.conversations.Assign(request, timeout=self.deadline))
        return response.conversation

    async def set_status(self, request: conversations_pb2.SetStatusRequest) -> conversations_pb2.Conversation:
        response: conversations_pb2.SetStatusResponse = await _call(
            "conversations", self.conversations.SetStatus(request, timeout=self.deadline))
        return response.conversation

    async def indicate_typing(self, workspace_id: str, conversation_id: str, agent: common_pb2.Actor) -> bool:
        request = conversations_pb2.IndicateTypingRequest(workspace_id=workspace_id, conversation_id=conversation_id,
                                                          agent=agent)
        response: conversations_pb2.IndicateTypingResponse = await _call(
            "conversations", self.conversations.IndicateTyping(request, timeout=self.deadline))
        return response.sent

    async def mark_read(self, request: conversations_pb2.MarkReadRequest) -> conversations_pb2.Conversation:
        response: conversations_pb2.MarkReadResponse = await _call(
            "conversations", self.conversations.MarkRead(request, timeout=self.deadline))
        return response.conversation

    async def list_templates(self, workspace_id: str, number_id: str) -> list[content_pb2.Template]:
        request = content_pb2.ListTemplatesRequest(workspace_id=workspace_id, number_id=number_id)
        response: content_pb2.ListTemplatesResponse = await _call(
            "conversations", self.conversations.ListTemplates(request, timeout=self.deadline))
        return list(response.items)

    async def list_library(self, workspace_id: str) -> list[content_pb2.LibraryItem]:
        request = content_pb2.ListLibraryItemsRequest(workspace_id=workspace_id)
        response: content_pb2.ListLibraryItemsResponse = await _call(
            "conversations", self.conversations.ListLibraryItems(request, timeout=self.deadline))
        return list(response.items)

    async def add_library_item(self, request: content_pb2.AddLibraryItemRequest) -> content_pb2.LibraryItem:
        response: content_pb2.AddLibraryItemResponse = await _call(
            "conversations", self.conversations.AddLibraryItem(request, timeout=self.deadline))
        return response.item

    async def remove_library_item(self, workspace_id: str, agent: common_pb2.Actor, item_id: str) -> None:
        request = content_pb2.RemoveLibraryItemRequest(workspace_id=workspace_id, agent=agent, item_id=item_id)
        await _call("conversations", self.conversations.RemoveLibraryItem(request, timeout=self.deadline))

    async def list_replies(self, workspace_id: str, query: str) -> list[content_pb2.CannedReply]:
        request = content_pb2.ListCannedRepliesRequest(workspace_id=workspace_id, query=query)
        response: content_pb2.ListCannedRepliesResponse = await _call(
            "conversations", self.conversations.ListCannedReplies(request, timeout=self.deadline))
        return list(response.items)

    async def add_reply(self, request: content_pb2.AddCannedReplyRequest) -> content_pb2.CannedReply:
        response: content_pb2.AddCannedReplyResponse = await _call(
            "conversations", self.conversations.AddCannedReply(request, timeout=self.deadline))
        return response.reply

    async def update_reply(self, request: content_pb2.UpdateCannedReplyRequest) -> content_pb2.CannedReply:
        response: content_pb2.UpdateCannedReplyResponse = await _call(
            "conversations", self.conversations.UpdateCannedReply(request, timeout=self.deadline))
        return response.reply

    async def remove_reply(self, workspace_id: str, agent: common_pb2.Actor, reply_id: str) -> None:
        request = content_pb2.RemoveCannedReplyRequest(workspace_id=workspace_id, agent=agent, reply_id=reply_id)
        await _call("conversations", self.conversations.RemoveCannedReply(request, timeout=self.deadline))

    async def render_reply(self, request: content_pb2.RenderCannedReplyRequest) -> str:
        response: content_pb2.RenderCannedReplyResponse = await _call(
            "conversations", self.conversations.RenderCannedReply(request, timeout=self.deadline))
        return response.text

    async def get_routing(self, workspace_id: str) -> conversations_pb2.Routing:
        request = conversations_pb2.GetRoutingRequest(workspace_id=workspace_id)
        response: conversations_pb2.GetRoutingResponse = await _call(
            "conversations", self.conversations.GetRouting(request, timeout=self.deadline))
        return response.routing

    async def set_routing(self, request: conversations_pb2.SetRoutingRequest) -> conversations_pb2.Routing:
        response: conversations_pb2.SetRoutingResponse = await _call(
            "conversations", self.conversations.SetRouting(request, timeout=self.deadline))
        return response.routing

    async def count_unread(self, workspace_id: str, number_ids: list[str]) -> dict[str, int]:
        request = conversations_pb2.CountUnreadRequest(workspace_id=workspace_id, number_ids=number_ids)
        response: conversations_pb2.CountUnreadResponse = await _call(
            "conversations", self.conversations.CountUnread(request, timeout=self.deadline))
        return {c.number_id: c.conversations for c in response.counts}

    # --- customers ----------------------------------------------------------------------------------------

    async def get_customer(self, workspace_id: str, customer_id: str) -> customers_pb2.Customer:
        request = customers_pb2.GetCustomerRequest(workspace_id=workspace_id, customer_id=customer_id)
        response: customers_pb2.GetCustomerResponse = await _call(
            "customers", self.customers.Get(request, timeout=self.deadline))
        return response.customer

    async def customer_stats(self, workspace_id: str, customer_id: str) -> customers_pb2.CustomerStats:
        request = customers_pb2.GetCustomerStatsRequest(workspace_id=workspace_id, customer_id=customer_id)
        response: customers_pb2.GetCustomerStatsResponse = await _call(
            "customers", self.customers.GetStats(request, timeout=self.deadline))
        return response.stats

    async def update_customer(self, request: customers_pb2.UpdateCustomerRequest) -> customers_pb2.Customer:
        response: customers_pb2.UpdateCustomerResponse = await _call(
            "customers", self.customers.Update(request, timeout=self.deadline))
        return response.customer

    # --- orders -------------------------------------------------------------------------------------------

    async def create_order(self, request: orders_pb2.CreateOrderRequest) -> orders_pb2.Order:
        response: orders_pb2.CreateOrderResponse = await _call(
            "orders", self.orders.Create(request, timeout=self.deadline))
        return response.order

    async def get_order(self, workspace_id: str, order_id: str) -> orders_pb2.Order:
        request = orders_pb2.GetOrderRequest(workspace_id=workspace_id, order_id=order_id)
        response: orders_pb2.GetOrderResponse = await _call("orders", self.orders.Get(request, timeout=self.deadline))
        return response.order

    async def orders_of_customer(self, workspace_id: str, customer_id: str,
                                 limit: int = 20) -> orders_pb2.ListOrdersByCustomerResponse:
        request = orders_pb2.ListOrdersByCustomerRequest(workspace_id=workspace_id, customer_id=customer_id,
                                                         limit=limit)
        return await _call("orders", self.orders.ListByCustomer(request, timeout=self.deadline))

    async def change_stage(self, request: orders_pb2.ChangeOrderStageRequest) -> orders_pb2.Order:
        response: orders_pb2.ChangeOrderStageResponse = await _call(
            "orders", self.orders.ChangeStage(request, timeout=self.deadline))
        return response.order

    # --- presence -----------------------------------------------------------------------------------------

    async def get_presence(self, workspace_id: str, conversation_ids: list[str]) -> presence_pb2.GetPresenceResponse:
        request = presence_pb2.GetPresenceRequest(workspace_id=workspace_id, conversation_ids=conversation_ids)
        return await _call("presence", self.presence.GetPresence(request, timeout=self.deadline))

    async def set_composing(self, workspace_id: str, agent: common_pb2.Actor, conversation_id: str, on: bool) -> None:
        request = presence_pb2.SetComposingRequest(workspace_id=workspace_id, agent=agent,
                                                   conversation_id=conversation_id, composing=on)
        await _call("presence", self.presence.SetComposing(request, timeout=self.deadline))

    async def set_viewing(self, workspace_id: str, agent: common_pb2.Actor, conversation_id: str) -> None:
        """The agent has this conversation open ("" for none); it expires unless repeated."""
        request = presence_pb2.SetViewingRequest(workspace_id=workspace_id, agent=agent,
                                                 conversation_id=conversation_id)
        await _call("presence", self.presence.SetViewing(request, timeout=self.deadline))

    async def heartbeat(self, workspace_id: str, agent: common_pb2.Actor) -> None:
        request = presence_pb2.HeartbeatRequest(workspace_id=workspace_id, agent=agent)
        await _call("presence", self.presence.Heartbeat(request, timeout=self.deadline))

    # --- ingest -------------------------------------------------------------------------------------------

    async def upsert_channel(self, request: ingest_pb2.UpsertChannelRequest) -> ingest_pb2.Channel:
        response: ingest_pb2.UpsertChannelResponse = await _call(
            "ingest", self.ingest.UpsertChannel(request, timeout=self.deadline))
        return response.channel

    async def list_channels(self, workspace_id: str) -> list[ingest_pb2.Channel]:
        request = ingest_pb2.ListChannelsRequest(workspace_id=workspace_id)
        response: ingest_pb2.ListChannelsResponse = await _call(
            "ingest", self.ingest.ListChannels(request, timeout=self.deadline))
        return list(response.channels)

    async def list_unrouted(self, limit: int) -> list[ingest_pb2.UnroutedEvent]:
        response: ingest_pb2.ListUnroutedResponse = await _call(
            "ingest", self.ingest.ListUnrouted(ingest_pb2.ListUnroutedRequest(limit=limit), timeout=self.deadline))
        return list(response.events)

    async def upload_media(self, parts: AsyncIterator[ingest_pb2.UploadMediaRequest]) -> ingest_pb2.MediaInfo:
        response: ingest_pb2.UploadMediaResponse = await _call(
            "ingest", self.ingest.UploadMedia(parts, timeout=self.media_deadline))
        return response.info

    async def keep_media(self, workspace_id: str, storage_id: str) -> ingest_pb2.MediaInfo:
        """Marks an upload as referenced (a library item's file), so ingest never purges it as unsent."""
        request = ingest_pb2.KeepMediaRequest(workspace_id=workspace_id, storage_id=storage_id)
        response: ingest_pb2.KeepMediaResponse = await _call(
            "ingest", self.ingest.KeepMedia(request, timeout=self.deadline))
        return response.info

    async def open_media(self, workspace_id: str, storage_id: str) -> MediaDownload:
        """Starts streaming a stored file: its info now (NotFound for another workspace's file), the
        bytes from :meth:`MediaDownload.chunks`."""
        call = self.ingest.GetMedia(ingest_pb2.GetMediaRequest(workspace_id=workspace_id, storage_id=storage_id),
                                    timeout=self.media_deadline)
        try:
            first: ingest_pb2.GetMediaResponse = await _call("ingest", call.read())
        except BaseException:
            call.cancel()
            raise
        if first is grpc.aio.EOF or not first.HasField("info"):
            call.cancel()
            raise Unavailable("the ingest service sent no file info", {"service": "ingest"})
        return MediaDownload(first.info, call)


class MediaDownload:
    def __init__(self, info: ingest_pb2.MediaInfo, call: Any) -> None:
        self.info = info
        self._call = call

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                message = await _call("ingest", self._call.read())
                if message is grpc.aio.EOF:
                    return
                if message.HasField("chunk"):
                    yield message.chunk
        finally:
            self.close()

    def close(self) -> None:
        self._call.cancel()
