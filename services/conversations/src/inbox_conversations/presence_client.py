"""Adapter: the presence service's gRPC API, for who is online (auto-assignment's candidates)."""

from __future__ import annotations

import grpc

from inbox.presence.v1 import presence_pb2, presence_pb2_grpc
from inbox_conversations.usecases.sending import Agent
from inbox_core.errors import Unavailable
from inbox_core.grpc_client import channel


class PresenceDirectory:
    def __init__(self, target: str, deadline_s: float = 2.0) -> None:
        self.channel = channel(target)
        self.stub = presence_pb2_grpc.PresenceServiceStub(self.channel)
        self.deadline_s = deadline_s

    async def online(self, workspace_id: str) -> list[Agent]:
        """The workspace's agents online now (a stream open in the gateway keeps them so); Unavailable
        when presence does not answer."""
        try:
            answer: presence_pb2.GetPresenceResponse = await self.stub.GetPresence(
                presence_pb2.GetPresenceRequest(workspace_id=workspace_id), timeout=self.deadline_s)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"presence did not answer: {exc.code().name}") from exc
        return [Agent(a.agent.id, a.agent.name) for a in answer.agents if a.agent.id]

    async def close(self) -> None:
        await self.channel.close()
