"""What the API's handlers share: error documentation, actors, and finding a resource's workspace."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from google.protobuf.struct_pb2 import Struct
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2
from inbox.ingest.v1 import ingest_pb2
from inbox_core.errors import InvalidRequest, NotFound
from inbox_gateway import convert
from inbox_gateway import models as m
from inbox_gateway.accounts import Principal
from inbox_gateway.gateway import Gateway

log = logging.getLogger("inbox.gateway.api")

# Handler parameters injected by name (see http.create_app): ``gateway``, the process's parts, and
# ``principal``, the signed-in agent. Each is named as its type is; ``Dep`` marks the injected form.
GatewayDep = NamedDependency[Gateway]
PrincipalDep = NamedDependency[Principal]

_DESCRIPTIONS = {
    400: "invalid_request: the request is malformed (bad JSON, a missing or invalid field or parameter)",
    401: "unauthenticated: no valid session (sign in)",
    403: "forbidden: the agent's role does not allow this",
    404: "not_found: no such resource in the agent's workspaces",
    409: "conflict (window_closed for a free-form message outside Meta's 24-hour window)",
    413: "too_large: the file is larger than Meta allows for its type",
    415: "unsupported_media_type: a file type Meta does not take",
    422: "validation_failed: the request is well-formed but does not fit (e.g. template params)",
    429: "rate_limited: too many attempts; see Retry-After",
    503: "unavailable: a backing service is down or slow; safe to retry",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error bodies a route may answer (every authenticated route: 400, 401, 503)."""
    wanted = sorted({400, 401, 503, *statuses})
    return {s: ResponseSpec(data_container=m.ErrorBody, description=_DESCRIPTIONS[s], generate_examples=False)
            for s in wanted}


def actor_fields(principal: Principal) -> dict[str, str]:
    return {"id": principal.agent_id, "name": principal.name}


def conversation_actor(principal: Principal) -> common_pb2.Actor:
    return common_pb2.Actor(**actor_fields(principal))


# --- finding a resource's workspace ----------------------------------------------------------------------


async def find_conversation(gateway: Gateway, principal: Principal,
                            conversation_id: str) -> tuple[str, conversations_pb2.Conversation]:
    """The conversation, from whichever of the agent's workspaces has it (404 if none)."""
    return await gateway.locator.find(f"conversation:{conversation_id}", principal,
                                 lambda ws: gateway.upstream.get_conversation(ws, conversation_id, principal.agent_id))


async def conversation_workspace(gateway: Gateway, principal: Principal, conversation_id: str) -> str:
    """The workspace to pass along with a call about this conversation. For an agent of one workspace
    that is its workspace, without a call: the service itself answers NOT_FOUND for another's id."""
    home = gateway.locator.home(f"conversation:{conversation_id}", principal)
    if home is not None:
        return home
    workspace_id, _ = await find_conversation(gateway, principal, conversation_id)
    return workspace_id


async def media_info(gateway: Gateway, workspace_id: str, storage_id: str) -> ingest_pb2.MediaInfo:
    """A stored file's info, checking it belongs to the workspace (ingest answers NOT_FOUND otherwise)."""
    download = await gateway.upstream.open_media(workspace_id, storage_id)
    download.close()
    return download.info


async def colleagues_in(gateway: Gateway, principal: Principal,
                        conversations: list[conversations_pb2.Conversation]) -> dict[str, convert.Colleagues]:
    """Colleagues composing in and viewing these conversations (the agent itself left out), from presence,
    one call per workspace, all at once. Presence being away leaves the lists empty rather than failing the
    page."""
    by_workspace: dict[str, list[str]] = defaultdict(list)
    for c in conversations:
        by_workspace[c.workspace_id].append(c.id)
    return await colleagues_by_workspace(gateway, principal, by_workspace)


async def colleagues_by_workspace(gateway: Gateway, principal: Principal,
                                  by_workspace: dict[str, list[str]]) -> dict[str, convert.Colleagues]:
    """:func:`colleagues_in` for conversation ids by workspace (known before the conversations are); an
    empty list asks for every conversation of that workspace someone composes in or views."""
    if not by_workspace:
        return {}
    workspaces = list(by_workspace)
    results = await asyncio.gather(*(gateway.upstream.get_presence(ws, by_workspace[ws]) for ws in workspaces),
                                   return_exceptions=True)
    out: dict[str, convert.Colleagues] = {}
    for result in results:
        if isinstance(result, BaseException):
            log.warning("presence unavailable for the composing and viewing fields: %r", result)
            continue
        for conversation in result.conversations:
            out[conversation.conversation_id] = convert.Colleagues(
                composing=[m.Composing(agent_id=a.agent.id, name=a.agent.name)
                           for a in conversation.composing if a.agent.id != principal.agent_id],
                viewing=[m.Viewer(agent_id=a.agent.id, name=a.agent.name)
                         for a in conversation.viewing if a.agent.id != principal.agent_id])
    return out


def only_member(principal: Principal, workspace: str | None) -> list[str]:
    """The workspaces a listing covers: the one asked for (404 unless the agent's), else all of the agent's."""
    if workspace is not None:
        return [principal.require_member(workspace)]
    return principal.workspaces


def one_workspace(principal: Principal, workspace: str | None) -> str:
    """The workspace a request is about: the one given, or the agent's only one (400 when it has several)."""
    if workspace is not None:
        return principal.require_member(workspace)
    if len(principal.workspaces) == 1:
        return principal.workspaces[0]
    if not principal.workspaces:
        raise NotFound("the agent belongs to no workspace")
    raise InvalidRequest("the agent belongs to several workspaces: pass ?workspace=<id>",
                         {"workspaces": principal.workspaces})


# Free-form JSON (customer attributes, template parameters) travels as a protobuf Struct, whose numbers
# are doubles: deeper than this, or a number past what a double holds exactly, is refused as bad input
# (unbounded, 10**400 overflowed building the Struct and deep nesting exhausted the recursion: 5xx).
MAX_JSON_DEPTH = 10
MAX_JSON_INTEGER = 2**53


def check_json(value: Any, field: str, depth: int = 0) -> None:
    """400 ``invalid_request`` for a value a Struct cannot carry faithfully (too deep, a number out of range)."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidRequest(f"{field} is nested deeper than {MAX_JSON_DEPTH} levels", {"field": field})
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_JSON_INTEGER:
            raise InvalidRequest(f"{field} holds a number beyond +/-2^53", {"field": field})
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidRequest(f"{field} holds a number that is not finite", {"field": field})
    elif isinstance(value, dict):
        for item in value.values():
            check_json(item, field, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, field, depth + 1)


def struct_of(value: dict[str, Any], field: str = "body") -> Struct:
    check_json(value, field)
    out = Struct()
    out.update(value)
    return out
