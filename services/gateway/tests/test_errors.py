"""gRPC failures as docs/api.md's errors: a service that is down or slow answers 503 `unavailable` fast (never
500, never a hang), a NOT_FOUND is 404, the services' machine codes keep their meaning; bad input is 400."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from gateway_testkit import FAST_PASSWORDS, Server, Services, gateway_settings, login, make_team
from pymongo import AsyncMongoClient

from inbox.conversations.v1 import conversations_pb2, conversations_pb2_grpc
from inbox_core.errors import Conflict, InvalidRequest, NotFound, Unavailable, ValidationFailed, WindowClosed
from inbox_core.grpc_server import ERROR_CODE_KEY, GrpcServer
from inbox_core.settings import InboxSettings
from inbox_gateway.accounts import Accounts
from inbox_gateway.gateway import Gateway
from inbox_gateway.upstream import rpc_error
from inbox_testkit.ports import free_port


def failure(code: grpc.StatusCode, machine: str | None = None, details: str = "why") -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata((ERROR_CODE_KEY, machine)) if machine else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=details)


@pytest.mark.parametrize(("code", "machine", "error", "status", "api_code"), [
    (grpc.StatusCode.NOT_FOUND, "not_found", NotFound, 404, "not_found"),
    (grpc.StatusCode.NOT_FOUND, None, NotFound, 404, "not_found"),
    (grpc.StatusCode.FAILED_PRECONDITION, "window_closed", WindowClosed, 409, "window_closed"),
    (grpc.StatusCode.FAILED_PRECONDITION, None, Conflict, 409, "conflict"),
    (grpc.StatusCode.FAILED_PRECONDITION, "template_not_approved", Conflict, 409, "template_not_approved"),
    (grpc.StatusCode.INVALID_ARGUMENT, "validation_failed", ValidationFailed, 422, "validation_failed"),
    (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request", InvalidRequest, 400, "invalid_request"),
    (grpc.StatusCode.PERMISSION_DENIED, None, Exception, 403, "forbidden"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, None, Exception, 429, "rate_limited"),
    (grpc.StatusCode.UNAVAILABLE, None, Unavailable, 503, "unavailable"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, None, Unavailable, 503, "unavailable"),
    (grpc.StatusCode.INTERNAL, None, Unavailable, 503, "unavailable"),
    (grpc.StatusCode.UNIMPLEMENTED, None, Unavailable, 503, "unavailable"),
    (grpc.StatusCode.UNKNOWN, None, Unavailable, 503, "unavailable"),
    (grpc.StatusCode.UNAUTHENTICATED, None, Unavailable, 503, "unavailable"),
])
def test_grpc_status_to_api_error(code: grpc.StatusCode, machine: str | None, error: type[Exception], status: int,
                                  api_code: str) -> None:
    mapped = rpc_error(failure(code, machine), "conversations")
    assert isinstance(mapped, error)
    assert (mapped.http_status, mapped.code) == (status, api_code)
    if status == 503:
        assert mapped.details == {"service": "conversations"} and "why" not in mapped.message  # no internals


async def test_a_service_that_is_down_answers_503_fast(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server, server.client(await login(server, team.agent)) as client:
        for method, path, body in [("GET", "/api/conversations", None), ("GET", "/api/numbers", None),
                                   ("GET", "/api/conversations/cnv_1/timeline", None),
                                   ("POST", "/api/conversations/cnv_1/notes", {"text": "hi"}),
                                   ("GET", "/api/orders/ord_1", None), ("GET", "/api/agents", None)]:
            started = time.monotonic()
            response = await client.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error"]["code"] == "unavailable"
            assert time.monotonic() - started < 2.0, path


class Hanging(conversations_pb2_grpc.ConversationsServiceServicer):
    async def ListConversations(self, request: Any, context: Any) -> conversations_pb2.ListConversationsResponse:
        await asyncio.sleep(30)
        return conversations_pb2.ListConversationsResponse()


async def test_a_slow_service_answers_503_at_the_deadline(inbox_settings: InboxSettings, mongo_client: Any) -> None:
    server = GrpcServer(free_port(), host="127.0.0.1")
    server.add(conversations_pb2_grpc.add_ConversationsServiceServicer_to_server, Hanging(),
               "inbox.conversations.v1.ConversationsService")
    await server.start()
    try:
        slow = inbox_settings.model_copy(update={"grpc_deadline_s": 0.5})
        gw = Gateway(gateway_settings(slow, conversations_target=server.address), client=mongo_client,
                     passwords=FAST_PASSWORDS, stream=False)
        team = await make_team(gw)
        async with Server(gw) as http, http.client(await login(http, team.agent)) as client:
            started = time.monotonic()
            response = await client.get("/api/conversations")
            elapsed = time.monotonic() - started
            assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
            assert 0.4 < elapsed < 2.0
    finally:
        await server.stop(grace=0)


async def test_not_found_and_bad_input(inbox_settings: InboxSettings, mongo_client: Any, services: Services) -> None:
    gw = Gateway(gateway_settings(inbox_settings, **services.targets()), client=mongo_client,
                 passwords=FAST_PASSWORDS, stream=False)
    team = await make_team(gw)
    async with Server(gw) as server, server.client(await login(server, team.agent)) as client:
        missing = await client.get("/api/conversations/cnv_does_not_exist")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert (await client.post("/api/conversations/cnv_x/notes", json={"text": "a"})).status_code == 404
        for body in (b"{not json", b'{"text": 5}', b'{"text": "a", "extra": 1}', b"[]"):
            response = await client.post("/api/conversations/cnv_x/notes", content=body,
                                         headers={"content-type": "application/json"})
            assert response.status_code == 400, body
            assert response.json()["error"]["code"] == "invalid_request"
        bad_limit = await client.get("/api/conversations", params={"limit": "0"})
        assert bad_limit.status_code == 400
        bad_filter = await client.get("/api/conversations", params={"filter": "everything"})
        assert bad_filter.status_code == 400
        bad_cursor = await client.get("/api/conversations", params={"cursor": "%%%"})
        assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["code"] == "invalid_request"
        bad_stage = await client.post("/api/orders/ord_1/stage", json={"stage": "teleported"})
        assert bad_stage.status_code == 400


async def test_oversized_input_is_a_4xx_in_the_error_shape(inbox_settings: InboxSettings, mongo_client: Any,
                                                          services: Services) -> None:
    """A 2 MB customer attribute was accepted once (the gateway took 10 MB) and its event could never be
    published. API bodies are capped (uploads have their own limit), and so are the parts of them."""
    gw = Gateway(gateway_settings(inbox_settings, **services.targets()), client=mongo_client,
                 passwords=FAST_PASSWORDS, stream=False)
    team = await make_team(gw)
    async with Server(gw) as server, server.client(await login(server, team.agent)) as client:
        huge = await client.patch("/api/customers/cus_x", json={"attributes": {"notes": "x" * 2_000_000}})
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "too_large", huge.text
        many = await client.patch("/api/customers/cus_x", json={"attributes": {str(i): i for i in range(51)}})
        assert many.status_code == 400 and many.json()["error"]["code"] == "invalid_request"
        long_note = await client.post("/api/conversations/cnv_x/notes", json={"text": "n" * 10_001})
        assert long_note.status_code == 400 and "error" in long_note.json()
        params = await client.post("/api/conversations/cnv_x/templates", json={
            "name": "t", "language": "en", "params": {"body": ["v"] * 101}})
        assert params.status_code == 400 and params.json()["error"]["code"] == "invalid_request"


async def test_the_gateways_own_database_away_is_503(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server, server.client(await login(server, team.agent)) as client:
        dead: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}/",
                                                                   serverSelectionTimeoutMS=300)
        gateway.accounts = Accounts(dead["gone"])
        gateway.auth.accounts = gateway.accounts
        try:
            response = await client.get("/api/me")
            assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
        finally:
            await dead.close()
