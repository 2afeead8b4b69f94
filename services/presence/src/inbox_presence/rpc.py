"""gRPC servicer of inbox.presence.v1.PresenceService: protobuf in and out, the rules in tracker/domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pymongo.errors import PyMongoError

from inbox.common.v1 import common_pb2
from inbox.presence.v1 import presence_pb2, presence_pb2_grpc
from inbox_core.errors import Unavailable
from inbox_core.mongo import database_unavailable
from inbox_presence import domain
from inbox_presence.domain import AgentView, ConversationView, State
from inbox_presence.tracker import PresenceTracker

SERVICE_NAME = "inbox.presence.v1.PresenceService"


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _actor(agent: domain.Agent) -> common_pb2.Actor:
    return common_pb2.Actor(id=agent.id, name=agent.name)


def _activity(state: State) -> presence_pb2.AgentActivity:
    return presence_pb2.AgentActivity(agent=_actor(state.agent), since=_timestamp(state.since),
                                      expires_at=_timestamp(state.expires_at))


def _conversation(view: ConversationView) -> presence_pb2.ConversationPresence:
    return presence_pb2.ConversationPresence(
        conversation_id=view.conversation_id,
        composing=[_activity(s) for s in view.composing],
        viewing=[_activity(s) for s in view.viewing],
    )


def _agent(view: AgentView) -> presence_pb2.AgentPresence:
    return presence_pb2.AgentPresence(
        agent=_actor(view.online.agent),
        last_seen=_timestamp(view.online.last_seen),
        online_since=_timestamp(view.online.since),
        viewing_conversation_id=view.viewing_conversation_id,
    )


@asynccontextmanager
async def _database_errors() -> AsyncIterator[None]:
    """The database being away is a passing failure: UNAVAILABLE (retry), not INTERNAL."""
    try:
        yield
    except PyMongoError as exc:
        if database_unavailable(exc):
            raise Unavailable("presence storage is unavailable, retry") from exc
        raise


class PresenceRpc(presence_pb2_grpc.PresenceServiceServicer):
    def __init__(self, tracker: PresenceTracker) -> None:
        self.tracker = tracker

    async def Heartbeat(self, request: presence_pb2.HeartbeatRequest,
                        context: grpc.aio.ServicerContext) -> presence_pb2.HeartbeatResponse:
        workspace_id = domain.require_id("workspace_id", request.workspace_id)
        agent = domain.agent_of(request.agent.id, request.agent.name)
        async with _database_errors():
            expires_at = await self.tracker.heartbeat(workspace_id, agent)
        return presence_pb2.HeartbeatResponse(expires_at=_timestamp(expires_at))

    async def SetComposing(self, request: presence_pb2.SetComposingRequest,
                           context: grpc.aio.ServicerContext) -> presence_pb2.SetComposingResponse:
        workspace_id = domain.require_id("workspace_id", request.workspace_id)
        agent = domain.agent_of(request.agent.id, request.agent.name)
        conversation_id = domain.require_id("conversation_id", request.conversation_id)
        async with _database_errors():
            expires_at = await self.tracker.set_composing(workspace_id, agent, conversation_id, request.composing)
        if expires_at is None:
            return presence_pb2.SetComposingResponse()
        return presence_pb2.SetComposingResponse(expires_at=_timestamp(expires_at))

    async def SetViewing(self, request: presence_pb2.SetViewingRequest,
                         context: grpc.aio.ServicerContext) -> presence_pb2.SetViewingResponse:
        workspace_id = domain.require_id("workspace_id", request.workspace_id)
        agent = domain.agent_of(request.agent.id, request.agent.name)
        conversation_id = domain.require_id("conversation_id", request.conversation_id) \
            if request.conversation_id.strip() else None
        async with _database_errors():
            expires_at = await self.tracker.set_viewing(workspace_id, agent, conversation_id)
        if expires_at is None:
            return presence_pb2.SetViewingResponse()
        return presence_pb2.SetViewingResponse(expires_at=_timestamp(expires_at))

    async def GetPresence(self, request: presence_pb2.GetPresenceRequest,
                          context: grpc.aio.ServicerContext) -> presence_pb2.GetPresenceResponse:
        workspace_id = domain.require_id("workspace_id", request.workspace_id)
        async with _database_errors():
            conversations, agents = await self.tracker.get_presence(workspace_id, list(request.conversation_ids))
        return presence_pb2.GetPresenceResponse(
            conversations=[_conversation(v) for v in conversations],
            agents=[_agent(v) for v in agents],
        )
