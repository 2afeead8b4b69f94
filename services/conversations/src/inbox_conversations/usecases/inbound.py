"""A message from Meta (live, history backfill, or an SMB-app echo) into its conversation.

A run of live texts from one customer (consecutive on the partition: a burst, or the backlog after lag)
is folded (``run``): three operations and one conversation.updated for all of them.

One inbound text to a conversation that exists is three database operations: the conversation read
by ``_id`` (taking the timeline's next ``seq`` as it reads), the message's insert, and one update of
the conversation guarded by the version that was read (its fields decided in inbound.py, the pure
rules). Pending facts are read only when the conversation notes some for this message, when the
message has media (a media result names no conversation) or when the conversation is new.

Crash safety without transactions: the message is inserted first with its ``seq`` (a redelivery's
insert fails and the stored one wins, so the order does not move; the seq it took is a gap); the
conversation's change is decided from what is stored (the message's id in ``applied`` means it was
counted), so applying it again changes nothing; then the events are published with ids derived from
the input.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from inbox_conversations import documents, domain, inbound, views
from inbox_conversations.outbox import Publisher, next_arrival, utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.facts import Fact, Facts
from inbox_conversations.usecases.publishing import Announcer
from inbox_conversations.usecases.routing import AutoAssignment
from inbox_core.events.conversations import ActivityCreated, MessageCreated
from inbox_core.events.whatsapp import MessageReceived
from inbox_core.ids import conversation_id as make_conversation_id
from inbox_core.mongo import Document

log = logging.getLogger("inbox.conversations.inbound")

# A conversation changed meanwhile (a MarkRead, an assignment) makes the guarded write miss: decide again.
MAX_DECISIONS = 8


def reopened_activity_id(message_id: str) -> str:
    """The ``reopened`` activity a customer message makes: derived from it, so a retry inserts it once."""
    return domain.derived_id("act_", "reopened", message_id)


# At most this many messages in one run: each is counted in ``applied``, which keeps inbound.APPLIED_KEEP.
RUN_LONGEST = 16


def joins_run(msg: MessageReceived) -> bool:
    """A live text the customer wrote, quoting nothing: what ``ReceiveMessage.run`` folds with its neighbours
    (anything else, a reaction, media, a reply, a history or echo, goes alone)."""
    return (msg.type == "text" and msg.direction == "in" and msg.origin == "live" and bool(msg.phone_number_id)
            and bool(msg.wa_id or msg.user_id) and not (msg.context is not None and msg.context.message_id))


def _applied(conversation: Document, fields: Document) -> Document:
    """The conversation as it reads after ``fields`` (a dotted name is set inside its parent)."""
    out = dict(conversation)
    for name, value in fields.items():
        parent, dot, child = name.partition(".")
        if dot:
            out[parent] = {**(out.get(parent) or {}), child: value}
        else:
            out[name] = value
    return out


class ConversationChanged(RuntimeError):
    """The conversation kept changing under the worker (retried by the consumer)."""


class ReceiveMessage:
    def __init__(self, repos: Repositories, publisher: Publisher, announcer: Announcer, facts: Facts,
                 auto_assignment: AutoAssignment | None = None) -> None:
        self.repos = repos
        self.publisher = publisher
        self.announcer = announcer
        self.facts = facts
        self.auto_assignment = auto_assignment

    async def __call__(self, event_id: str, workspace_id: str, msg: MessageReceived) -> None:
        number_id = msg.phone_number_id
        if not number_id or not (msg.wa_id or msg.user_id):
            log.warning("message %s names no number or customer; not shown", msg.wamid)
            return
        conv, created, seq = await self._conversation(event_id, workspace_id, number_id, msg)
        if msg.type == "reaction":
            await self._reaction(event_id, workspace_id, conv, msg)
            return
        conversation_id = conv["_id"]
        timeline = self.repos.timeline
        # A redelivery takes a new seq, but the insert keeps the first one (the stored document wins).
        doc = documents.inbound_message(workspace_id, conversation_id, msg, utcnow(), next_arrival(), seq)
        quoted = doc.get("reply_to_wamid")
        if quoted:
            target = await timeline.by_wamid(workspace_id, quoted)
            if target is not None:
                doc["reply_to"] = target["_id"]
        redelivered = not await timeline.insert(doc)
        if redelivered:
            # Seen before (a redelivery, or the same wamid under another id): carry on with what is
            # stored, so effects a crash cut short are completed now.
            stored = await timeline.get(doc["_id"]) or await timeline.by_wamid(workspace_id, msg.wamid)
            if stored is None:
                raise RuntimeError(f"message {msg.wamid} neither inserted nor found")
            doc = stored
        message_id = doc["_id"]
        if quoted and not doc.get("reply_to"):
            await self.facts.apply_or_pend(Fact(
                workspace_id, quoted, "reply", {"message_id": message_id},
                domain.derived_id("pnd_", "reply", message_id), event_id, conversation_id))

        effects = domain.message_effects(msg.origin, msg.direction, msg.type)
        last = documents.last_message(doc)
        profile = msg.profile_name if msg.direction == "in" else None
        # Reopening a resolved or snoozed conversation: its activity is inserted before the write that
        # reopens (a crash between the two leaves nothing a redelivery, which no longer reopens, must add).
        reopening = await self._reopening(conv, doc, effects)
        conv = await self._change(conv, lambda c: inbound.message_change(c, doc, last, effects, profile))
        await self._publish_reopening(conv, reopening, {message_id} if redelivered else set())
        # A profile name changed the customer's name (or a crash cut a sync short): no query otherwise.
        await self.repos.search.sync_if_stale(conv)

        keys = [msg.wamid]
        media_id = (doc.get("media") or {}).get("media_id")
        if media_id:
            keys.append(f"media:{media_id}")
        noted = [k for k in keys if k in (conv.get("pending_keys") or [])]
        applied = await self.facts.drain(workspace_id, keys) if created or media_id or noted else []

        current = (await timeline.get(message_id) or doc) if applied else doc
        await self.publisher.conversation_event(
            workspace_id, conversation_id, MessageCreated(conversation_id=conversation_id,
                                                          message=views.message(current)),
            domain.event_id(message_id, "message.created"))
        # Facts about this very message are in message.created already; others get message.updated.
        await self.facts.publish(workspace_id, applied, skip_message=message_id, skip_conversation=conversation_id)
        if noted:
            await self.repos.conversations.clear_pending(conversation_id, noted)
        if any(conversation_id in item.conversations for item in applied):
            conv = await self.repos.conversations.find(conversation_id) or conv  # a fact changed the summary
        await self.announcer.conversation(conv, domain.event_id(event_id, "conversation.updated"))
        # After the conversation's events, so its assignment follows its creation on the topic; a redelivery
        # tries again (a crash may have cut it short), and the conditional write assigns once.
        if effects.unread and self.auto_assignment is not None:
            await self.auto_assignment.after_customer_message(conv, message_id)

    async def run(self, workspace_id: str, items: Sequence[tuple[str, MessageReceived]]) -> None:
        """Texts of one customer to one conversation (each ``joins_run``; event id and message), in their
        order: one read taking all their seqs, their inserts together, one guarded write of what they do to
        the conversation (decided message after message, as one by one), one conversation.updated; each
        still has its own message.created. A new conversation, or one noting pending facts about one of
        them, goes one by one (the seqs taken are gaps). Redelivered, it changes nothing twice: each
        message's insert keeps the first one, and ``applied`` tells which were counted."""
        first = items[0][1]
        number_id = first.phone_number_id or ""  # joins_run: there is one
        await self.repos.numbers.ensure(workspace_id, number_id, first.waba_id, first.display_phone_number)
        conversation_id = make_conversation_id(workspace_id, number_id, first.wa_id or None, first.user_id)
        if any(make_conversation_id(workspace_id, msg.phone_number_id or "", msg.wa_id or None, msg.user_id)
               != conversation_id for _, msg in items[1:]):
            for event_id, msg in items:  # a run is one conversation's (the caller cut it so): else one by one
                await self(event_id, workspace_id, msg)
            return
        conv = await self.repos.conversations.find_taking_seq(conversation_id, len(items))
        noted = set(conv.get("pending_keys") or []) if conv is not None else set()
        if conv is None or any(msg.wamid in noted for _, msg in items):
            for event_id, msg in items:
                await self(event_id, workspace_id, msg)
            return
        timeline = self.repos.timeline
        first_seq = int(conv["last_seq"]) - len(items) + 1
        now = utcnow()
        docs = [documents.inbound_message(workspace_id, conversation_id, msg, now, next_arrival(), first_seq + i)
                for i, (_, msg) in enumerate(items)]
        inserted = await asyncio.gather(*(timeline.insert(doc) for doc in docs))
        redelivered: set[str] = set()
        for i, ok in enumerate(inserted):
            if not ok:  # seen before: what is stored wins (its seq, its arrival)
                stored = await timeline.get(docs[i]["_id"]) or await timeline.by_wamid(workspace_id, docs[i]["wamid"])
                if stored is None:
                    raise RuntimeError(f"message {docs[i]['wamid']} neither inserted nor found")
                docs[i] = stored
                redelivered.add(stored["_id"])
        effects = domain.message_effects("live", "in", "text")

        def decide(current: Document) -> Document:
            fields: Document = {}
            for doc, (_, msg) in zip(docs, items, strict=True):
                change = inbound.message_change(current, doc, documents.last_message(doc), effects, msg.profile_name)
                fields.update(change)
                current = _applied(current, change)
            return fields

        opener = next((doc for doc in docs if inbound.reopens(conv, doc, effects)), None)
        reopening = await self._reopening(conv, opener, effects) if opener is not None else None
        conv = await self._change(conv, decide)
        await self._publish_reopening(conv, reopening, redelivered)
        await self.repos.search.sync_if_stale(conv)
        for doc in docs:
            await self.publisher.conversation_event(
                workspace_id, conversation_id, MessageCreated(conversation_id=conversation_id,
                                                              message=views.message(doc)),
                domain.event_id(doc["_id"], "message.created"))
        await self.announcer.conversation(conv, domain.event_id(items[-1][0], "conversation.updated"))
        if self.auto_assignment is not None:
            await self.auto_assignment.after_customer_message(conv, docs[-1]["_id"])

    async def _publish_reopening(self, conv: Document, reopening: Document | None, redelivered: set[str]) -> None:
        """activity.created of the reopening just stored, unless the conversation is no longer open; or,
        when a crash after the write that reopened cut its event short, of the stored one: a redelivered
        message (one of ``redelivered``) no longer reopens, so its activity is read (by _id, only then)."""
        if reopening is None and conv.get("reopened_by") in redelivered:
            reopening = await self.repos.timeline.get(reopened_activity_id(conv["reopened_by"]))
        elif reopening is not None and domain.status_of(conv) != domain.OPEN:
            reopening = None
        if reopening is not None:
            conversation_id = conv["_id"]
            await self.publisher.conversation_event(
                conv["workspace_id"], conversation_id, ActivityCreated(conversation_id=conversation_id,
                                                                       activity=views.activity(reopening)),
                domain.event_id(reopening["_id"], "activity.created"))

    async def _reopening(self, conv: Document, message: Document, effects: domain.MessageEffects) -> Document | None:
        """The ``reopened`` activity of a customer message to a resolved or snoozed conversation, stored
        (its own seq; the id derived from the message, so a retry inserts it once); None otherwise."""
        if not inbound.reopens(conv, message, effects):
            return None
        activity = documents.activity(
            reopened_activity_id(message["_id"]), conv["workspace_id"], conv["_id"], "reopened",
            None, {"reason": "customer_message"}, utcnow(), next_arrival(),
            await self.repos.conversations.take_seqs(conv["_id"]))
        if not await self.repos.timeline.insert(activity):
            activity = await self.repos.timeline.get(activity["_id"]) or activity
        return activity

    async def _conversation(self, event_id: str, workspace_id: str, number_id: str,
                            msg: MessageReceived) -> tuple[Document, bool, int]:
        """The conversation (one read), created on the first event of a customer on a number; whether this
        event created it; and the timeline seq the message takes (a reaction adds no item and takes none).

        Creating costs no more round trips than it must: the new conversation's search entries are
        inserted before it (their ids are derived, so the conversation can be created marked as indexed),
        and it is created with the message's seq (1) taken, which is this event's when this event's write
        created it (``created_by_event``; two first events may race, and the other's then takes the next seq)."""
        await self.repos.numbers.ensure(workspace_id, number_id, msg.waba_id, msg.display_phone_number)
        conversation_id = make_conversation_id(workspace_id, number_id, msg.wa_id or None, msg.user_id)
        takes_seq = msg.type != "reaction"
        repo = self.repos.conversations
        conv = await (repo.find_taking_seq(conversation_id) if takes_seq else repo.find(conversation_id))
        if conv is not None:
            return conv, False, int(conv.get("last_seq") or 0)
        customer = documents.customer_copy(workspace_id, msg.wa_id, msg.user_id,
                                           msg.profile_name if msg.direction == "in" else None)
        at = domain.to_ms(msg.timestamp)
        created = inbound.new_conversation(workspace_id, number_id, customer, at, utcnow())
        created.update(await self.repos.search.index_new(workspace_id, conversation_id, created))
        created.update(created_by_event=event_id, last_seq=1 if takes_seq else 0)
        conv = await repo.create(conversation_id, created)
        ours = conv.get("created_by_event") == event_id
        # The customers service may have told us about this customer before the conversation existed
        # (its handler remembers the customer, then updates the conversations it finds: one of the two sees
        # the other's write).
        known = await self.repos.customers.get(customer["id"])
        if known is not None and await repo.apply_customer({**known, "id": customer["id"]}):
            conv = await repo.find(conversation_id) or conv
        seq = 1 if ours else 0
        if takes_seq and not ours:
            conv = await repo.find_taking_seq(conversation_id) or conv
            seq = int(conv.get("last_seq") or 0)
        await self.repos.search.sync_if_stale(conv)
        return conv, True, seq

    async def _change(self, conv: Document, decide: Callable[[Document], Document]) -> Document:
        """Writes what ``decide`` says of the conversation as read, once; decides again from a fresh read
        when it changed meanwhile. The conversation after."""
        for _ in range(MAX_DECISIONS):
            fields = decide(conv)
            if not fields:
                return conv
            after = await self.repos.conversations.update(conv["_id"], conv.get("version"), fields)
            if after is not None:
                return after
            fresh = await self.repos.conversations.find(conv["_id"])
            if fresh is None:
                raise ConversationChanged(f"conversation {conv['_id']} disappeared")
            conv = fresh
        raise ConversationChanged(f"conversation {conv['_id']} kept changing")

    async def _reaction(self, event_id: str, workspace_id: str, conv: Document, msg: MessageReceived) -> None:
        """A reaction is folded into its message; a live one refreshes the window, nothing else."""
        reaction = msg.reaction
        at = domain.to_ms(msg.timestamp)
        if reaction is not None and reaction.message_id:
            customer = documents.customer_copy(workspace_id, msg.wa_id, msg.user_id, msg.profile_name)
            entry = {
                "emoji": "" if reaction.removed else reaction.emoji,
                "at": at,
                "direction": msg.direction,
                "by": {"id": customer["id"], "name": customer["name"]} if msg.direction == "in" else None,
                "wamid": msg.wamid,
            }
            reactor = "customer" if msg.direction == "in" else "business"
            await self.facts.record(Fact(workspace_id, reaction.message_id, "reaction",
                                         {"reactor": reactor, "entry": entry},
                                         domain.derived_id("pnd_", "reaction", workspace_id, msg.wamid), event_id,
                                         conv["_id"]))
        if domain.message_effects(msg.origin, msg.direction, msg.type).opens_window:
            conv = await self._change(conv, lambda c: inbound.customer_message_fields(at, None, msg.wamid)
                                      if inbound.customer_message_is_newer(c, at, None) else {})
        await self.announcer.conversation(conv, domain.event_id(event_id, "conversation.updated"))
