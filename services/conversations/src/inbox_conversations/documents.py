"""How the stored documents are made from events and requests (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inbox_conversations import domain
from inbox_core.events.whatsapp import MEDIA_TYPES, MessageReceived
from inbox_core.ids import customer_id
from inbox_core.mongo import Document


def customer_copy(workspace_id: str, wa_id: str, user_id: str | None, profile_name: str | None) -> Document:
    """The conversation's first copy of the customer, from the WhatsApp event itself."""
    return {
        "id": customer_id(workspace_id, wa_id or None, user_id),
        "wa_id": wa_id,
        "user_id": user_id,
        "name": profile_name or "",
        "phone": f"+{wa_id}" if wa_id else "",
    }


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_none=True, by_alias=True) if model is not None else None


def inbound_message(workspace_id: str, conversation_id: str, msg: MessageReceived, now: datetime,
                    arrival: int, seq: int) -> Document:
    """A message from Meta (live, history backfill, or an SMB-app echo). ``reply_to`` is resolved later.
    ``seq`` places it in its timeline (``arrival`` too, for the order of items from before seqs); both
    are kept from the first insert only."""
    doc: Document = {
        "_id": domain.inbound_message_id(workspace_id, msg.wamid),
        "kind": "message",
        "workspace_id": workspace_id,
        "conversation_id": conversation_id,
        "wamid": msg.wamid,
        "direction": msg.direction,
        "origin": msg.origin,
        "type": msg.type,
        "at": domain.to_ms(msg.timestamp),
        "arrival": arrival,
        "seq": seq,
        "created_at": now,
    }
    text = msg.text
    if msg.type == "button" and msg.button is not None:
        text = msg.button.text or msg.button.payload
    elif msg.type == "interactive" and msg.interactive is not None:
        text = msg.interactive.title or (msg.interactive.flow.body if msg.interactive.flow else None)
        doc["interactive"] = _dump(msg.interactive)
    elif msg.type == "order" and msg.order is not None:
        text = msg.order.text
    elif msg.type == "system" and msg.system is not None:
        text = msg.system.body
    if text is not None:
        doc["text"] = text
    if msg.media is not None:
        media = msg.media
        doc["media"] = {
            "id": "",
            "media_id": media.media_id,
            "mime_type": media.mime_type,
            "filename": media.filename,
            "caption": media.caption or msg.caption,
            "sha256": media.sha256,
            "size": 0,
            "voice": bool(media.voice),
            "status": "pending" if media.media_id else "unavailable",
        }
    elif msg.type in MEDIA_TYPES:
        doc["media"] = {"id": "", "caption": msg.caption, "size": 0, "status": "unavailable"}
    if msg.location is not None:
        doc["location"] = _dump(msg.location)
    if msg.contacts:
        doc["contacts"] = msg.contacts
    if msg.context is not None and msg.context.message_id:
        doc["reply_to_wamid"] = msg.context.message_id
    extra = {k: _dump(getattr(msg, k)) for k in ("button", "order", "system", "referral") if getattr(msg, k)}
    if msg.unsupported:
        extra["unsupported"] = msg.unsupported
    if msg.errors:
        extra["errors"] = [_dump(e) for e in msg.errors]
    if extra:
        doc["extra"] = extra
    if msg.direction == "out":
        # Sent by the business outside this inbox (SMB app, history): Meta already has it.
        status = msg.history_status if msg.history_status in domain.STATUS_RANK else "sent"
        doc.update(status=status, status_rank=domain.STATUS_RANK[status], status_at=doc["at"])
    return doc


def preview_of(msg: Document) -> str:
    media = msg.get("media") or {}
    template = msg.get("template") or {}
    return domain.preview(
        msg["type"], text=msg.get("text"), caption=media.get("caption"), filename=media.get("filename"),
        template_name=template.get("name"), voice=bool(media.get("voice")), revoked=bool(msg.get("revoked")),
    )


def last_message(msg: Document) -> Document:
    """The list's summary of a message."""
    last: Document = {"id": msg["_id"], "direction": msg["direction"], "type": msg["type"],
                      "preview": preview_of(msg), "at": msg["at"]}
    if msg.get("arrival") is not None:  # absent on items stored before arrivals existed
        last["arrival"] = msg["arrival"]
    if msg.get("status"):
        last["status"] = msg["status"]
        last["status_rank"] = msg.get("status_rank", domain.STATUS_RANK.get(msg["status"], 0))
    return last


def actor_doc(actor_id: str, name: str) -> Document | None:
    return {"id": actor_id, "name": name} if actor_id else None


def activity(activity_id: str, workspace_id: str, conversation_id: str, action: str, actor: Document | None,
             details: Document, at: datetime, arrival: int, seq: int | None) -> Document:
    doc: Document = {"_id": activity_id, "kind": "activity", "workspace_id": workspace_id,
                     "conversation_id": conversation_id, "action": action, "actor": actor, "details": details,
                     "at": domain.to_ms(at), "arrival": arrival}
    if seq is not None:
        doc["seq"] = seq
    return doc
