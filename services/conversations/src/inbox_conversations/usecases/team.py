"""The team's work on a conversation: notes (never sent to Meta), assignment, status and reading.

Each change is acknowledged after one single-document write that embeds its events (the outbox, see
outbox.py); the request then carries the entry out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from inbox_conversations import documents, domain, views
from inbox_conversations.outbox import Publisher, command_key, next_arrival, outbox_event, utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.inbound import ConversationChanged
from inbox_conversations.usecases.publishing import assignment_entry
from inbox_conversations.usecases.sending import Agent
from inbox_core.errors import InvalidRequest, ValidationFailed
from inbox_core.events import Event
from inbox_core.events.commands import MarkReadCommand
from inbox_core.events.conversations import (
    ActivityCreated,
    ConversationRead,
    ConversationSummary,
    NoteCreated,
    NoteView,
)
from inbox_core.mongo import Document

MAX_NOTE = 10000
MAX_MENTIONS = 20
TYPING_EVERY = timedelta(seconds=25)  # Meta shows the indicator for 25 s (or until the reply)
# A conversation changed meanwhile makes the status write (guarded by version) miss: decide again.
MAX_STATUS_DECISIONS = 8


def _iso(value: datetime) -> str:
    """A time in an activity's details as the API writes times (RFC 3339, UTC, milliseconds)."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TeamWork:
    def __init__(self, repos: Repositories, publisher: Publisher, publish_timeout_s: float = 3.0) -> None:
        self.repos = repos
        self.publisher = publisher
        self.publish_timeout_s = publish_timeout_s

    async def note(self, workspace_id: str, conversation_id: str, agent: Agent, text: str,
                   mentions: Sequence[Agent] = ()) -> NoteView:
        """A note; ``mentions`` are agents of the workspace (the caller checked), each marked as having an
        unseen mention in the conversation when the note's entry is carried out (outbox.py)."""
        conv = await self.repos.conversations.get(workspace_id, conversation_id)
        text = text.strip()
        if not text:
            raise InvalidRequest("the note is empty", {"field": "text"})
        if len(text) > MAX_NOTE:
            raise ValidationFailed(f"a note has at most {MAX_NOTE} characters", {"field": "text"})
        mentioned = list({a.id: a for a in mentions if a.id}.values())
        if len(mentioned) > MAX_MENTIONS:
            raise InvalidRequest(f"a note mentions at most {MAX_MENTIONS} agents", {"field": "mentions"})
        now = utcnow()
        note = {"_id": domain.new_id("note_"), "kind": "note", "workspace_id": workspace_id,
                "conversation_id": conv["_id"], "text": text, "author": agent.doc(), "at": now,
                "arrival": next_arrival(), "seq": await self.repos.conversations.take_seqs(conv["_id"]),
                "mentions": [a.doc() for a in mentioned]}
        event = Event.of(NoteCreated(conversation_id=conv["_id"], note=views.note(note)), workspace_id=workspace_id,
                         id=domain.event_id(note["_id"], "note.created"))
        entry = {"id": "note", "created_at": now, "conversation_id": conv["_id"],
                 "events": [outbox_event(self.publisher.topics.conversations, conv["_id"], event)]}
        if any(a.id != agent.id for a in mentioned):
            entry["apply"] = "note_mentions"
        await self.repos.timeline.insert({**note, "outbox": {"note": entry}, "outbox_at": now})
        await self.publisher.try_carry_out("timeline", note["_id"], entry, self.publish_timeout_s)
        return views.note(note)

    async def assign(self, workspace_id: str, conversation_id: str, agent: Agent,
                     assignee: Agent | None) -> ConversationSummary:
        """Assigns (None: unassigns); assigning the current assignee again changes nothing."""
        conversations = self.repos.conversations
        conv = await conversations.get(workspace_id, conversation_id)
        new = assignee.doc() if assignee is not None else None
        previous = conv.get("assignee")
        if (new or {}).get("id") == (previous or {}).get("id"):
            return views.summary(conv, utcnow())
        now = utcnow()
        entry_id = domain.new_id("out_")
        entry = assignment_entry(self.publisher.topics.conversations, conv, entry_id,
                                 domain.derived_id("act_", "assign", entry_id), new, previous, agent.doc(), {},
                                 now, await conversations.take_seqs(conv["_id"]))
        if await conversations.set_assignee(workspace_id, conv["_id"], new, entry, now) is not None:
            await self.publisher.try_carry_out("conversations", conv["_id"], entry, self.publish_timeout_s)
        return views.summary(await conversations.get(workspace_id, conv["_id"]), utcnow())

    async def set_status(self, workspace_id: str, conversation_id: str, agent: Agent, status: str,
                         until: datetime | None) -> ConversationSummary:
        """Resolves, snoozes (until a time in the future) or reopens; the same status (and snooze end)
        again changes nothing. InvalidRequest: see domain.status_change."""
        conv = await self.repos.conversations.get(workspace_id, conversation_id)
        until = domain.to_ms(until) if until is not None else None
        changed, _ = await self.change_status(conv, status, until, agent.doc(), {"until": _iso(until)} if until else {},
                                           lambda c: domain.status_change(c, status, until, utcnow()))
        return views.summary(changed, utcnow())

    async def change_status(self, conv: Document, status: str, until: datetime | None, by: Document | None,
                            details: Document, decide: Callable[[Document], str | None]) -> tuple[Document, bool]:
        """Moves the conversation to ``status`` if ``decide`` (given the conversation as read) names the
        activity to record: one write guarded by the version read, with the activity and the events in
        its outbox entry; decided again from a fresh read when it changed meanwhile. The conversation after,
        and whether this call moved it."""
        conversations = self.repos.conversations
        for _ in range(MAX_STATUS_DECISIONS):
            action = decide(conv)
            if action is None:
                return conv, False
            now = utcnow()
            entry_id = domain.new_id("out_")
            activity = documents.activity(
                domain.derived_id("act_", "status", entry_id), conv["workspace_id"], conv["_id"], action, by,
                details, now, next_arrival(), await conversations.take_seqs(conv["_id"]))
            event = Event.of(ActivityCreated(conversation_id=conv["_id"], activity=views.activity(activity)),
                             workspace_id=conv["workspace_id"], id=domain.event_id(activity["_id"], "activity.created"))
            entry = {"id": entry_id, "created_at": now, "conversation_id": conv["_id"], "inserts": [activity],
                     "events": [outbox_event(self.publisher.topics.conversations, conv["_id"], event)],
                     "conversation_updated": True}
            after = await conversations.set_status(conv["workspace_id"], conv["_id"], conv.get("version"), status,
                                                   until, entry, now)
            if after is not None:
                await self.publisher.try_carry_out("conversations", conv["_id"], entry, self.publish_timeout_s)
                return await conversations.get(conv["workspace_id"], conv["_id"]), True
            conv = await conversations.get(conv["workspace_id"], conv["_id"])
        raise ConversationChanged(f"conversation {conv['_id']} kept changing")

    async def mark_read(self, workspace_id: str, conversation_id: str, agent: Agent) -> ConversationSummary:
        """Unread to 0, the agent's unseen mentions in it cleared, and a read receipt for the customer's newest
        live message, once per message."""
        conversations = self.repos.conversations
        conv = await conversations.get(workspace_id, conversation_id)
        if agent.id:
            await self.repos.mentions.clear(conv["_id"], agent.id)
        last_inbound = conv.get("last_inbound_wamid")
        receipt = last_inbound if last_inbound and last_inbound != conv.get("read_receipt_wamid") else None
        if not conv.get("unread_count") and receipt is None:
            return views.summary(conv, utcnow())
        now = utcnow()
        entry_id = domain.new_id("out_")
        topics = self.publisher.topics
        events = [outbox_event(topics.conversations, conv["_id"], Event.of(
            ConversationRead(conversation_id=conv["_id"], by=views.actor(agent.doc()), last_read_wamid=receipt),
            workspace_id=workspace_id, id=domain.event_id(entry_id, "conversation.read")))]
        if receipt is not None:
            events.append(self._receipt(conv, receipt))
        entry: Document = {"id": entry_id, "created_at": now, "conversation_id": conv["_id"], "events": events,
                           "conversation_updated": True}
        await conversations.mark_read(workspace_id, conv["_id"], entry, now, receipt)
        await self.publisher.try_carry_out("conversations", conv["_id"], entry, self.publish_timeout_s)
        return views.summary(await conversations.get(workspace_id, conv["_id"]), utcnow())

    async def typing(self, workspace_id: str, conversation_id: str) -> bool:
        """Meta's typing indicator for the customer's newest live message (a read receipt with
        ``typing_indicator``, as the Cloud API does it), at most once per TYPING_EVERY per conversation and
        only inside the window: whether this call sent it."""
        conversations = self.repos.conversations
        conv = await conversations.get(workspace_id, conversation_id)
        wamid = conv.get("last_inbound_wamid")
        now = utcnow()
        if not wamid or not domain.window_open(conv.get("window_expires_at"), now):
            return False
        entry_id = domain.new_id("out_")
        entry: Document = {"id": entry_id, "created_at": now, "conversation_id": conv["_id"],
                           "events": [self._receipt(conv, wamid, typing_id=entry_id)]}
        if not await conversations.claim_typing(workspace_id, conv["_id"], now - TYPING_EVERY, entry, now):
            return False
        await self.publisher.try_carry_out("conversations", conv["_id"], entry, self.publish_timeout_s)
        return True

    def _receipt(self, conv: Document, wamid: str, typing_id: str | None = None) -> Document:
        customer = conv["customer"]
        # A typing indicator is a command of its own each time (its id from its entry); a read receipt once
        # per message.
        command_id = (domain.derived_id("cmd_", "typing", conv["_id"], typing_id) if typing_id
                      else domain.derived_id("cmd_", "read", conv["_id"], wamid))
        command = MarkReadCommand(
            command_id=command_id, phone_number_id=conv["number_id"],
            wa_id=customer.get("wa_id") or "", user_id=customer.get("user_id"), conversation_id=conv["_id"],
            message_wamid=wamid, typing_indicator=typing_id is not None)
        return outbox_event(
            self.publisher.topics.commands, command_key(conv["number_id"], customer.get("wa_id") or "",
                                                        customer.get("user_id")),
            Event.of(command, workspace_id=conv["workspace_id"], id=domain.event_id(command.command_id, "command")))
