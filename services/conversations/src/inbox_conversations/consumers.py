"""Kafka consumers of the conversations service (the ``worker`` role).

Every handler is idempotent, because after a crash between its effects and the offset commit it sees
the event again; none relies on a transaction:

- a message is inserted first (unique ``_id`` from its wamid, and a unique ``wamid`` index) with its
  ``arrival`` (the order among items of the same timestamp), then its effects on the conversation are
  applied from the stored document (so a redelivery keeps the first arrival); a duplicate insert does
  not stop the handler, the effects are applied again, and each effect is idempotent by construction:
  the unread increment records the message id in the same single-document update (``applied``) and is
  skipped when it is there, the last message and the window are conditional "newer than what is
  there" updates;
- a status moves forward only (conditional update on ``status_rank``);
- a fact about a message not seen yet (status, reaction, reply, media, edit) is kept in ``pending``
  and applied when the message arrives;
- every handler publishes its conversation events before it returns, with ids derived from the input,
  so a redelivery republishes the same ids (consumers deduplicate on them) with current content.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from faststream.kafka import KafkaBroker

from inbox_conversations import documents, domain, views
from inbox_conversations.outbox import Publisher, Topics, next_arrival, utcnow
from inbox_conversations.store import ConversationsStore
from inbox_core.events import Event
from inbox_core.events.conversations import ActivityCreated, MessageCreated, MessageUpdated
from inbox_core.events.customers import CustomerEvent
from inbox_core.events.orders import OrderCreated, OrderStageChanged
from inbox_core.events.whatsapp import (
    MediaStored,
    MediaUnavailable,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MetaError,
    SendAccepted,
    SendFailed,
    StatusUpdated,
    TemplatesSynced,
    TemplateStatusChanged,
)
from inbox_core.ids import conversation_id as make_conversation_id
from inbox_core.kafka import subscribe
from inbox_core.mongo import Document

log = logging.getLogger("inbox.conversations.consumers")

GROUP_ID = "inbox-conversations"
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated", "customer.stats_changed"})


def error_doc(errors: list[MetaError]) -> Document | None:
    if not errors:
        return None
    first = errors[0]
    data_details = (first.error_data or {}).get("details")
    detail = first.details or (data_details if isinstance(data_details, str) else None) or first.message or ""
    return {"code": first.code, "title": first.title or first.message or "", "detail": detail}


@dataclass
class Applied:
    """A message changed (or confirmed) by a fact, to publish; ``conversations`` whose summary it touched."""

    message: Document
    changes: list[str]
    source: str  # what made the change: an event id or a pending id (for the event id published)
    conversations: set[str] = field(default_factory=set)


class Handlers:
    def __init__(self, store: ConversationsStore, publisher: Publisher,
                 pending_ttl: timedelta = timedelta(days=7)) -> None:
        self.store = store
        self.publisher = publisher
        self.pending_ttl = pending_ttl

    # --- whatsapp.events.v1 --------------------------------------------------------------------------------

    async def on_whatsapp_event(self, event: Event) -> None:
        workspace_id = event.workspace_id
        if workspace_id is None:  # a number no workspace has connected: ingest keeps it as unrouted
            return
        if event.type == "whatsapp.message.received":
            await self.on_message(event, workspace_id, event.payload(MessageReceived))
        elif event.type == "whatsapp.status.updated":
            await self.on_status(event, workspace_id, event.payload(StatusUpdated))
        elif event.type == "whatsapp.send.accepted":
            await self.on_send_accepted(event, workspace_id, event.payload(SendAccepted))
        elif event.type == "whatsapp.send.failed":
            await self.on_send_failed(event, workspace_id, event.payload(SendFailed))
        elif event.type == "whatsapp.message.edited":
            await self.on_edited(event, workspace_id, event.payload(MessageEdited))
        elif event.type == "whatsapp.message.revoked":
            await self.on_revoked(event, workspace_id, event.payload(MessageRevoked))
        elif event.type == "whatsapp.media.stored":
            await self.on_media(event, workspace_id, event.payload(MediaStored))
        elif event.type == "whatsapp.media.unavailable":
            await self.on_media(event, workspace_id, event.payload(MediaUnavailable))
        elif event.type == "whatsapp.templates.synced":
            await self.on_templates(event, workspace_id, event.payload(TemplatesSynced))
        elif event.type == "whatsapp.template.status_changed":
            await self.on_template_status(event, workspace_id, event.payload(TemplateStatusChanged))

    async def _conversation(self, workspace_id: str, number_id: str, msg: MessageReceived) -> Document:
        now = utcnow()
        await self.store.ensure_number(workspace_id, number_id, msg.waba_id, msg.display_phone_number)
        conversation_id = make_conversation_id(workspace_id, number_id, msg.wa_id or None, msg.user_id)
        customer = documents.customer_copy(workspace_id, msg.wa_id, msg.user_id,
                                           msg.profile_name if msg.direction == "in" else None)
        conv = await self.store.ensure_conversation(
            conversation_id=conversation_id, workspace_id=workspace_id, number_id=number_id,
            customer=customer, at=domain.to_ms(msg.timestamp), now=now)
        if not conv["customer"].get("version"):
            # The customers service may have told us about this customer before the conversation existed.
            known = await self.store.known_customer(customer["id"])
            if known is not None:
                await self.store.apply_customer({**known, "id": customer["id"]})
        return conv

    async def on_message(self, event: Event, workspace_id: str, msg: MessageReceived) -> None:
        number_id = msg.phone_number_id
        if not number_id or not (msg.wa_id or msg.user_id):
            log.warning("message %s names no number or customer; not shown", msg.wamid)
            return
        conv = await self._conversation(workspace_id, number_id, msg)
        conversation_id = conv["_id"]
        effects = domain.message_effects(msg.origin, msg.direction, msg.type)
        at = domain.to_ms(msg.timestamp)
        if msg.type == "reaction":
            await self._reaction(event, workspace_id, conversation_id, msg)
            if effects.opens_window:
                await self.store.apply_customer_message(conversation_id, at, msg.wamid)
            await self.publisher.conversation_updated(conversation_id,
                                                      domain.event_id(event.id, "conversation.updated"))
            return

        # A redelivery builds a new arrival, but the insert keeps the first one (the stored document wins).
        doc = documents.inbound_message(workspace_id, conversation_id, msg, utcnow(), next_arrival())
        quoted = doc.get("reply_to_wamid")
        if quoted:
            target = await self.store.message_by_wamid(workspace_id, quoted)
            if target is not None:
                doc["reply_to"] = target["_id"]
        if not await self.store.insert_item(doc):
            # Seen before (a redelivery, or the same wamid under another id): carry on with what is
            # stored, so effects a crash cut short are completed now.
            stored = await self.store.get_item(doc["_id"]) or await self.store.message_by_wamid(workspace_id,
                                                                                                msg.wamid)
            if stored is None:
                raise RuntimeError(f"message {msg.wamid} neither inserted nor found")
            doc = stored
        message_id = doc["_id"]
        if quoted and not doc.get("reply_to"):
            await self._apply_or_pend(workspace_id, quoted, "reply", {"message_id": message_id},
                                      domain.derived_id("pnd_", "reply", message_id), event.id)

        if effects.unread:
            await self.store.count_unread_once(conversation_id, message_id)
        if effects.becomes_last:
            await self.store.apply_last_message(conversation_id, documents.last_message(doc), effects.awaiting_reply)
        if effects.opens_window:
            await self.store.apply_customer_message(conversation_id, at, msg.wamid, doc.get("arrival"))
        if msg.direction == "in" and msg.profile_name:
            await self.store.refresh_profile_name(conversation_id, msg.profile_name,
                                                  conv["customer"].get("phone") or "")

        keys = [msg.wamid]
        media_id = (doc.get("media") or {}).get("media_id")
        if media_id:
            keys.append(f"media:{media_id}")
        applied = await self._drain(workspace_id, keys)

        current = await self.store.get_item(message_id) or doc
        await self.publisher.conversation_event(
            workspace_id, conversation_id, MessageCreated(conversation_id=conversation_id,
                                                          message=views.message(current)),
            domain.event_id(message_id, "message.created"))
        # Facts about this very message are in message.created already; others get message.updated.
        await self._publish_applied(workspace_id, applied, skip_message=message_id, skip_conversation=conversation_id)
        await self.publisher.conversation_updated(conversation_id, domain.event_id(event.id, "conversation.updated"))

    async def _reaction(self, event: Event, workspace_id: str, conversation_id: str, msg: MessageReceived) -> None:
        reaction = msg.reaction
        if reaction is None or not reaction.message_id:
            return
        customer = documents.customer_copy(workspace_id, msg.wa_id, msg.user_id, msg.profile_name)
        entry = {
            "emoji": "" if reaction.removed else reaction.emoji,
            "at": domain.to_ms(msg.timestamp),
            "direction": msg.direction,
            "by": {"id": customer["id"], "name": customer["name"]} if msg.direction == "in" else None,
            "wamid": msg.wamid,
        }
        reactor = "customer" if msg.direction == "in" else "business"
        applied = await self._apply_or_pend(workspace_id, reaction.message_id, "reaction",
                                            {"reactor": reactor, "entry": entry},
                                            domain.derived_id("pnd_", "reaction", workspace_id, msg.wamid), event.id)
        await self._publish_applied(workspace_id, applied)

    async def on_status(self, event: Event, workspace_id: str, status: StatusUpdated) -> None:
        if domain.status_rank(status.status) is None:
            log.info("status %r of %s is not one we track", status.status, status.wamid)
            return
        data = {"status": status.status, "at": domain.to_ms(status.timestamp), "error": error_doc(status.errors)}
        applied = await self._apply_or_pend(
            workspace_id, status.wamid, "status", data,
            domain.derived_id("pnd_", "status", workspace_id, status.wamid, status.status), event.id)
        await self._publish_applied(workspace_id, applied)

    async def on_send_accepted(self, event: Event, workspace_id: str, accepted: SendAccepted) -> None:
        message_id = accepted.message_id or accepted.command_id
        msg = await self.store.get_item(message_id)
        if msg is None or msg.get("workspace_id") != workspace_id:
            log.info("send result for unknown message %s", message_id)
            return
        if not msg.get("wamid"):
            msg = await self.store.set_wamid(message_id, accepted.wamid, utcnow()) or msg
        applied = await self._drain(workspace_id, [accepted.wamid])
        current = await self.store.get_item(message_id) or msg
        applied.append(Applied(current, ["wamid"], event.id))
        await self._publish_applied(workspace_id, applied)

    async def on_send_failed(self, event: Event, workspace_id: str, failed: SendFailed) -> None:
        message_id = failed.message_id or failed.command_id
        msg = await self.store.get_item(message_id)
        if msg is None or msg.get("workspace_id") != workspace_id:
            log.info("send result for unknown message %s", message_id)
            return
        applied = await self._apply("status", msg, {
            "status": "failed", "at": domain.to_ms(event.occurred_at), "error": error_doc([failed.error])}, event.id)
        await self._publish_applied(workspace_id, [applied] if applied else [])

    async def on_edited(self, event: Event, workspace_id: str, edited: MessageEdited) -> None:
        if not edited.original_message_id or edited.message is None:
            return
        data = {"text": edited.message.text, "caption": edited.message.caption, "at": domain.to_ms(edited.timestamp)}
        applied = await self._apply_or_pend(workspace_id, edited.original_message_id, "edit", data,
                                            domain.derived_id("pnd_", "edit", workspace_id, edited.wamid), event.id)
        await self._publish_applied(workspace_id, applied)

    async def on_revoked(self, event: Event, workspace_id: str, revoked: MessageRevoked) -> None:
        if not revoked.original_message_id:
            return
        applied = await self._apply_or_pend(workspace_id, revoked.original_message_id, "revoke",
                                            {"at": domain.to_ms(revoked.timestamp)},
                                            domain.derived_id("pnd_", "revoke", workspace_id, revoked.wamid),
                                            event.id)
        await self._publish_applied(workspace_id, applied)

    async def on_media(self, event: Event, workspace_id: str, media: MediaStored | MediaUnavailable) -> None:
        if isinstance(media, MediaStored):
            data: Document = {"id": media.storage_id, "status": "stored", "size": media.size, "sha256": media.sha256}
            if media.mime_type:
                data["mime_type"] = media.mime_type
        else:
            data = {"status": "unavailable", "reason": media.reason}
        key = media.wamid or f"media:{media.media_id}"
        applied = await self._apply_or_pend(workspace_id, key, "media", data,
                                            domain.derived_id("pnd_", "media", workspace_id, event.id), event.id)
        await self._publish_applied(workspace_id, applied)

    async def on_templates(self, event: Event, workspace_id: str, synced: TemplatesSynced) -> None:
        templates: list[Document] = []
        for raw in synced.templates:
            name, language = raw.get("name"), raw.get("language")
            if not isinstance(name, str) or not isinstance(language, str):
                continue
            templates.append({
                "name": name, "language": language, "status": str(raw.get("status") or ""),
                "category": str(raw.get("category") or ""), "components": list(raw.get("components") or []),
                "meta_id": str(raw.get("id") or ""), "parameter_format": raw.get("parameter_format"),
            })
        extra: dict[str, Any] = synced.model_extra or {}
        numbers = [n for n in [extra.get("phone_number_id"), *(extra.get("phone_number_ids") or [])]
                   if isinstance(n, str) and n]
        for number_id in numbers:
            await self.store.ensure_number(workspace_id, number_id, synced.waba_id)
        synced_at = domain.to_ms(synced.synced_at or event.occurred_at)
        await self.store.apply_templates(workspace_id, synced.waba_id, templates, synced_at,
                                         last=synced.part >= synced.parts - 1)

    async def on_template_status(self, event: Event, workspace_id: str, change: TemplateStatusChanged) -> None:
        if change.message_template_name and change.waba_id:
            await self.store.set_template_status(workspace_id, change.waba_id, change.message_template_name,
                                                 change.message_template_language, change.event,
                                                 domain.to_ms(event.occurred_at))

    # --- facts about messages, in any order ----------------------------------------------------------------

    async def _target(self, workspace_id: str, key: str) -> Document | None:
        if key.startswith("media:"):
            return await self.store.message_by_media_id(workspace_id, key.removeprefix("media:"))
        return await self.store.message_by_wamid(workspace_id, key)

    async def _apply_or_pend(self, workspace_id: str, key: str, kind: str, data: Document, pending_id: str,
                             source: str) -> list[Applied]:
        """Applies a fact to its message, or keeps it until the message arrives."""
        target = await self._target(workspace_id, key)
        if target is not None:
            applied = await self._apply(kind, target, data, source)
            return [applied] if applied else []
        await self.store.add_pending(pending_id, workspace_id, key, kind, data, utcnow(), self.pending_ttl)
        # The message may have been stored between our look and our write: look again.
        if await self._target(workspace_id, key) is None:
            return []
        return await self._drain(workspace_id, [key])

    async def _drain(self, workspace_id: str, keys: list[str]) -> list[Applied]:
        """Applies the pending facts about these messages; each is deleted only after it was applied."""
        out: list[Applied] = []
        for pending in await self.store.pending_for(workspace_id, keys):
            target = await self._target(workspace_id, pending["wamid"])
            if target is None:
                continue
            applied = await self._apply(pending["kind"], target, pending["data"], pending["_id"])
            if applied is None:  # nothing to say (e.g. a later status is there): done with it
                await self.store.delete_pending(pending["_id"])
            else:  # deleted once published (see _publish_applied)
                out.append(applied)
        return out

    async def _apply(self, kind: str, target: Document, data: Document, source: str) -> Applied | None:
        """Applies one fact (idempotent). Returns the message to publish, as it is now, even when the fact
        was already applied (a redelivery after a crash must still publish what it missed)."""
        message_id = target["_id"]
        conversation_id = target["conversation_id"]
        if kind == "status":
            status = data["status"]
            if target.get("direction") != "out" or domain.status_rank(status) is None:
                return None
            after = await self.store.apply_status(message_id, status, data["at"], data.get("error"))
            current = after or await self.store.get_item(message_id)
            if current is None or current.get("status") != status:
                return None  # a later status is there already: nothing to say
            await self.store.apply_last_message_status(conversation_id, message_id, status)
            return Applied(current, ["status"], source, {conversation_id})
        if kind == "reaction":
            after = await self.store.apply_reaction(message_id, data["reactor"], data["entry"])
            current = after or await self.store.get_item(message_id)
            return Applied(current, ["reactions"], source) if current else None
        if kind == "reply":
            reply = await self.store.set_fields(data["message_id"], {"reply_to": message_id})
            return Applied(reply, ["reply_to"], source) if reply else None
        if kind == "media":
            after = await self.store.set_fields(message_id, {f"media.{k}": v for k, v in data.items()})
            return Applied(after, ["media"], source) if after else None
        if kind == "edit":
            fields: Document = {"edited": True, "edited_at": data["at"]}
            if data.get("text") is not None:
                fields["text"] = data["text"]
            if data.get("caption") is not None and target.get("media"):
                fields["media.caption"] = data["caption"]
            after = await self.store.set_fields(message_id, fields, unless={"edited_at": {"$gt": data["at"]}})
            current = after or await self.store.get_item(message_id)
            if current is None:
                return None
            await self.store.apply_last_message(conversation_id, documents.last_message(current),
                                                bool(current.get("direction") == "in"), only_if_last=True)
            return Applied(current, ["content"], source, {conversation_id})
        if kind == "revoke":
            after = await self.store.set_fields(message_id, {"revoked": True, "revoked_at": data["at"]})
            if after is None:
                return None
            await self.store.apply_last_message(conversation_id, documents.last_message(after),
                                                bool(after.get("direction") == "in"), only_if_last=True)
            return Applied(after, ["revoked"], source, {conversation_id})
        log.warning("unknown pending kind %r", kind)
        return None

    async def _publish_applied(self, workspace_id: str, applied: list[Applied], *, skip_message: str = "",
                               skip_conversation: str = "") -> None:
        """Publishes message.updated (and conversation.updated where a summary changed), then forgets
        the pending facts that were applied: after a crash before this, a redelivery applies and
        publishes them again."""
        conversations: dict[str, str] = {}
        for item in applied:
            message = item.message
            conversation_id = message["conversation_id"]
            if message["_id"] != skip_message:
                await self.publisher.conversation_event(
                    workspace_id, conversation_id,
                    MessageUpdated(conversation_id=conversation_id, message=views.message(message),
                                   changes=item.changes),
                    domain.event_id(item.source, message["_id"], "message.updated"))
            for cid in item.conversations - {skip_conversation}:
                conversations.setdefault(cid, item.source)
        for cid, source in conversations.items():
            await self.publisher.conversation_updated(cid, domain.event_id(source, cid, "conversation.updated"))
        for item in applied:
            if item.source.startswith("pnd_"):
                await self.store.delete_pending(item.source)

    # --- inbox.orders.v1 -----------------------------------------------------------------------------------

    async def on_order_event(self, event: Event) -> None:
        if event.type == "order.created":
            created = event.payload(OrderCreated)
            order = created.order
            action, actor = "order_created", created.order.created_by
            at = order.created_at
            details: Document = {"order_id": order.id, "order_number": order.number, "stage": order.stage,
                                 "total": {"amount": order.total.amount, "currency": order.total.currency}}
        elif event.type == "order.stage_changed":
            changed = event.payload(OrderStageChanged)
            order = changed.order
            action, actor = "order_stage_changed", changed.by
            last = order.stage_history[-1] if order.stage_history else None
            at = last.at if last is not None and last.stage == changed.to_stage else event.occurred_at
            if actor is None and last is not None and last.stage == changed.to_stage:
                actor = last.by
            details = {"order_id": order.id, "order_number": order.number, "from_stage": changed.from_stage,
                       "to_stage": changed.to_stage, "stage": order.stage}
        else:
            return
        if not order.conversation_id:
            return
        conv = await self.store.find_conversation(order.conversation_id)
        if conv is None or conv["workspace_id"] != order.workspace_id:
            log.info("order %s names conversation %s, not found in its workspace", order.id, order.conversation_id)
            return
        activity_id = domain.derived_id("act_", "order-event", event.id)
        doc = documents.activity(activity_id, order.workspace_id, conv["_id"], action,
                                 {"id": actor.id, "name": actor.name} if actor else None, details, at,
                                 next_arrival())
        await self.store.insert_item(doc)
        stored = await self.store.get_item(activity_id) or doc
        await self.publisher.conversation_event(
            order.workspace_id, conv["_id"], ActivityCreated(conversation_id=conv["_id"],
                                                             activity=views.activity(stored)),
            domain.event_id(event.id, "activity.created"))

    # --- inbox.customers.v1 --------------------------------------------------------------------------------

    async def on_customer_event(self, event: Event) -> None:
        if event.type not in CUSTOMER_EVENTS:
            return
        snapshot = event.payload(CustomerEvent).customer
        customer = {
            "id": snapshot.id,
            "name": snapshot.name or snapshot.profile_name or "",
            "phone": snapshot.phone or (f"+{snapshot.wa_id}" if snapshot.wa_id else ""),
            "version": snapshot.version,
        }
        await self.store.remember_customer(customer)
        await self.store.apply_customer(customer)
        # Every conversation now showing this version, also those updated before a crash cut us short.
        for conversation_id in await self.store.conversations_with_customer_version(snapshot.id, snapshot.version):
            await self.publisher.conversation_updated(conversation_id,
                                                      domain.event_id(event.id, conversation_id, "updated"))


def register(broker: KafkaBroker, store: ConversationsStore, publisher: Publisher, topics: Topics | None = None,
             pending_ttl: timedelta = timedelta(days=7)) -> Handlers:
    """Subscribes this service's handlers (consumer group ``inbox-conversations``).

    Each handler is idempotent and commits after its effects."""
    topics = topics or publisher.topics
    handlers = Handlers(store, publisher, pending_ttl)
    subscribe(broker, topics.whatsapp_events, group_id=GROUP_ID, handler=handlers.on_whatsapp_event)
    subscribe(broker, topics.orders, group_id=GROUP_ID, handler=handlers.on_order_event)
    subscribe(broker, topics.customers, group_id=GROUP_ID, handler=handlers.on_customer_event)
    return handlers
