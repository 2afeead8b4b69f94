"""``GET /api/stream``: server-sent events of the agent's workspaces (see inbox_gateway.stream)."""

from __future__ import annotations

from typing import Annotated, cast

from litestar import get
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.types import ASGIApp

from inbox_gateway.api.common import GatewayDep, PrincipalDep, errors
from inbox_gateway.stream import EventStream, StreamPolicy

DESCRIPTION = """Server-sent events of the agent's workspaces. Each event's `event:` is its type, `data:` its
JSON and `id:` the event id; reconnecting with `Last-Event-ID` resumes from the gateway's buffer (a `reset`
event says it could not: reload, then follow). Types: `conversation.updated` (a Conversation, without
`composing`), `message.created` and `message.updated` (`{conversation_id, message}`), `note.created`
(`{conversation_id, note}`), `activity.created` (`{conversation_id, activity}`), `composing`
(`{conversation_id, agent, composing}`), `viewing`, `presence` (`{agent, online}`), `order.updated` (an Order),
`customer.updated` (a Customer with `stats`); other types pass through with their data as published. A
`: keep-alive` comment comes at least every 15 s. A client too slow to keep up gets `event: error`
(`{"reason": "too_slow"}`) and is disconnected; `session_ended` after logout. While a stream is open the
agent is shown online."""


@get("/api/stream", tags=["stream"], summary="Live updates (server-sent events)", description=DESCRIPTION,
     responses={200: ResponseSpec(data_container=str, media_type="text/event-stream",
                                  description="An endless text/event-stream", generate_examples=False),
                **errors()})
async def stream(
    gateway: GatewayDep, principal: PrincipalDep,
    last_event_id: Annotated[str | None, HeaderParameter(name="Last-Event-ID", required=False, max_length=200)] = None,
    resume_from: Annotated[str | None, QueryParameter(name="last_event_id", required=False, max_length=200,
                                                      description="Same as the Last-Event-ID header")] = None,
) -> ASGIApp:
    subscription = gateway.open_stream(principal, last_event_id or resume_from)
    policy = StreamPolicy(keepalive_s=gateway.settings.stream_keepalive_s,
                          send_timeout_s=gateway.settings.stream_send_timeout_s)
    # A plain ASGI app (not a Litestar Response), so that every write can have a timeout.
    return cast(ASGIApp, EventStream(gateway.hub, subscription, policy))
