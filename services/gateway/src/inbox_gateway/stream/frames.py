"""From an event of ``inbox.*.v1`` to its SSE frame: the stream's name for it, its data as the API's models
(the event's view as its service's gRPC message, through the converter of the gRPC answers: a streamed
conversation reads exactly like a fetched one), and the frame's bytes, encoded once for every connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from inbox.conversations.v1 import conversations_pb2
from inbox.customers.v1 import customers_pb2
from inbox_core.events import Event
from inbox_core.events import conversations as cev
from inbox_core.events import customers as kev
from inbox_core.events import orders as oev
from inbox_core.events import presence as pev
from inbox_gateway import convert

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Frame:
    id: str
    workspace_id: str
    name: str
    data: bytes  # the SSE frame, ready to write
    agent_id: str = ""  # set: only that agent's streams (of the workspace) get it, e.g. a `mention`


def sse(name: str, data: Any, event_id: str | None = None) -> bytes:
    lines = []
    if event_id:
        lines.append(b"id: " + _clean(event_id).encode())
    lines.append(b"event: " + _clean(name).encode())
    lines.append(b"data: " + _encoder.encode(data))
    return b"\n".join(lines) + b"\n\n"


def _clean(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


def _without_composing(conversation: Any) -> dict[str, Any]:
    # Composing and viewing changes arrive as their own events; empty lists here would wrongly clear them.
    # unseen_mentions is each agent's own (the event counts for nobody): `mention` events tell it.
    data: dict[str, Any] = msgspec.to_builtins(conversation)
    data.pop("composing", None)
    data.pop("viewing", None)
    data.pop("unseen_mentions", None)
    return data


def _message(view: cev.MessageView) -> Any:
    return convert.message(convert.as_proto(view, conversations_pb2.Message))


def _presence_agent(agent: pev.PresenceAgent) -> dict[str, str]:
    return {"id": agent.id, "name": agent.name}


def translate(event: Event) -> tuple[str, Any]:
    """The SSE name and data of an event (docs/api.md's names; unknown types pass through unchanged).

    A known type whose data does not validate raises (ValidationError): passed on as published, it would reach
    the clients under a known name in the wrong shape; raised, the feed gives its workspace's streams a
    ``reset`` (``fan_out_failed``) instead."""
    t = event.type
    if t in ("conversation.created", "conversation.updated"):
        c = event.payload(cev.ConversationEvent).conversation
        conversation = convert.conversation(convert.as_proto(c, conversations_pb2.Conversation))
        return "conversation.updated", _without_composing(conversation)
    if t == "message.created":
        mc = event.payload(cev.MessageCreated)
        return t, {"conversation_id": mc.conversation_id, "message": _message(mc.message)}
    if t == "message.updated":
        mu = event.payload(cev.MessageUpdated)
        return t, {"conversation_id": mu.conversation_id, "message": _message(mu.message),
                   "changes": mu.changes}
    if t == "note.created":
        nc = event.payload(cev.NoteCreated)
        note = convert.note(convert.as_proto(nc.note, conversations_pb2.Note))
        return t, {"conversation_id": nc.conversation_id, "note": note}
    if t == "activity.created":
        ac = event.payload(cev.ActivityCreated)
        activity = convert.activity(convert.as_proto(ac.activity, conversations_pb2.Activity))
        return t, {"conversation_id": ac.conversation_id, "activity": activity}
    if t in ("presence.composing.started", "presence.composing.stopped"):
        on = t.endswith("started")
        cs = event.payload(pev.ComposingStarted if on else pev.ComposingStopped)
        return "composing", {"conversation_id": cs.conversation_id, "agent": _presence_agent(cs.agent),
                             "composing": on, "session_id": cs.session_id,
                             "expires_at": cs.expires_at if isinstance(cs, pev.ComposingStarted) else None}
    if t in ("presence.viewing.started", "presence.viewing.stopped"):
        on = t.endswith("started")
        vs = event.payload(pev.ViewingStarted if on else pev.ViewingStopped)
        return "viewing", {"conversation_id": vs.conversation_id, "agent": _presence_agent(vs.agent),
                           "viewing": on, "session_id": vs.session_id}
    if t == "presence.agent.online":
        online = event.payload(pev.AgentOnline)
        return "presence", {"agent": _presence_agent(online.agent), "online": True, "since": online.since}
    if t == "presence.agent.offline":
        offline = event.payload(pev.AgentOffline)
        return "presence", {"agent": _presence_agent(offline.agent), "online": False,
                            "last_seen": offline.last_seen}
    if t in ("order.created", "order.stage_changed", "order.updated"):
        order = event.payload(oev.OrderEvent).order
        return "order.updated", convert.order(convert.order_as_proto(order))
    if t in ("customer.created", "customer.updated", "customer.stats_changed"):
        snapshot = event.payload(kev.CustomerEvent).customer
        data = msgspec.to_builtins(convert.customer(convert.as_proto(snapshot, customers_pb2.Customer)))
        # The revenue in the event's own currency: the stream has no workspace default to fill in.
        data["stats"] = convert.stats(convert.stats_as_proto(snapshot.stats), currency="")
        return "customer.updated", data
    return t, event.data


def frame_of(event: Event) -> Frame | None:
    if not event.workspace_id:
        return None  # nobody may see an event of no workspace
    name, data = translate(event)
    return Frame(id=event.id, workspace_id=event.workspace_id, name=name, data=sse(name, data, event.id))


def mention_frames(event: Event, frame: Frame) -> list[Frame]:
    """A note's ``mention`` frames: one for each agent it mentions (its author left out), to that agent only.
    Their ids are derived from the note's event, so a redelivered note tells nobody twice."""
    if event.type != "note.created" or not event.workspace_id:
        return []
    created = event.payload(cev.NoteCreated)
    note = msgspec.to_builtins(convert.note(convert.as_proto(created.note, conversations_pb2.Note)))
    author = created.note.author.id if created.note.author is not None else ""
    out = []
    for agent in created.note.mentions:
        if agent.id == author:
            continue
        frame_id = f"{frame.id}:mention:{agent.id}"
        data = {"conversation_id": created.conversation_id, "note": note, "by": note.get("author")}
        out.append(Frame(id=frame_id, workspace_id=event.workspace_id, name="mention",
                         data=sse("mention", data, frame_id), agent_id=agent.id))
    return out
