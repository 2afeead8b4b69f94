"""What a message from Meta does to its conversation (pure: no I/O).

The worker reads the conversation once, and these functions say which of its fields change; the
repository writes them in one update guarded by the version that was read. Deciding from the stored
state is what makes a redelivery harmless: a message already counted (its id is in ``applied``) is
not counted again, and a message older than the last one (by the timeline's order) does not replace it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inbox_conversations import domain
from inbox_core.mongo import Document

# Ids of messages whose unread increment was applied, kept on the conversation so a redelivered
# message never counts twice. Redelivery after a crash concerns the last few messages of a partition,
# so a short window is enough.
APPLIED_KEEP = 32


def _order(at: datetime, arrival: int | None, item_id: str) -> tuple[datetime, int, int, str]:
    """The timeline's order: (at, arrival, id); no arrival comes before any arrival."""
    return (at, 0 if arrival is None else 1, arrival or 0, item_id)


def is_newer(last: Document | None, message: Document) -> bool:
    """Whether ``message`` (a summary, documents.last_message) may take the place of ``last``: it is not
    older by (at, arrival, id). Of several of the same second the last to arrive wins; a redelivered
    older one (which keeps its first arrival) does not."""
    if last is None:
        return True
    return _order(last["at"], last.get("arrival"), last["id"]) <= _order(
        message["at"], message.get("arrival"), message["id"])


def customer_message_is_newer(conversation: Document, at: datetime, arrival: int | None) -> bool:
    """Whether a live customer message (or reaction, with no arrival) is the newest one: the window and
    the read receipt follow it. A reaction takes the place only with a newer timestamp."""
    current = conversation.get("last_customer_at")
    if current is None or current < at:
        return True
    if current > at or arrival is None:
        return False
    current_arrival = conversation.get("last_customer_arrival")
    return current_arrival is None or current_arrival < arrival


def customer_message_fields(at: datetime, arrival: int | None, wamid: str) -> Document:
    return {"last_customer_at": at, "last_customer_arrival": arrival,
            "window_expires_at": domain.window_expires_at(at), "last_inbound_wamid": wamid}


def message_change(conversation: Document, message: Document, last: Document, effects: domain.MessageEffects,
                   profile_name: str | None) -> Document:
    """The fields a stored message changes on its conversation (empty: nothing to write).

    ``message`` is the stored document (a redelivery's is the first one), ``last`` its summary.
    """
    fields: dict[str, Any] = {}
    message_id = message["_id"]
    applied = list(conversation.get("applied") or [])
    if effects.unread and message_id not in applied:
        fields.update(unread_count=int(conversation.get("unread_count") or 0) + 1, has_unread=True,
                      applied=[*applied, message_id][-APPLIED_KEEP:])
    if effects.becomes_last and is_newer(conversation.get("last_message"), last):
        if conversation.get("last_message") != last or conversation.get("awaiting_reply") != effects.awaiting_reply:
            fields.update(last_message=last, awaiting_reply=effects.awaiting_reply)
        updated_at = conversation.get("updated_at")
        if updated_at is None or updated_at < last["at"]:
            fields["updated_at"] = last["at"]
    if effects.opens_window and customer_message_is_newer(conversation, message["at"], message.get("arrival")):
        window = customer_message_fields(message["at"], message.get("arrival"), message["wamid"])
        if any(conversation.get(k) != v for k, v in window.items()):
            fields.update(window)
    fields.update(profile_name_change(conversation, message, profile_name))
    if reopens(conversation, message, effects):
        # reopened_by: a redelivery after a crash that cut the reopening's event short publishes it
        fields.update(status=domain.OPEN, snoozed_until=None, reopened_by=message_id)
    elif "status" not in conversation:
        # Made by a replica from before statuses during a rolling deploy, after the one-time backfill:
        # lists query by status, so its next message makes it findable again.
        fields["status"] = domain.OPEN
    return fields


def reopens(conversation: Document, message: Document, effects: domain.MessageEffects) -> bool:
    """A customer's live message reopens a resolved or snoozed conversation, when it is first counted
    (a redelivered one, already in ``applied``, does not reopen what the team resolved since)."""
    return (effects.unread and message["_id"] not in (conversation.get("applied") or [])
            and domain.status_of(conversation) != domain.OPEN)


def profile_name_change(conversation: Document, message: Document, profile_name: str | None) -> Document:
    """The WhatsApp profile name, until the customers service has told us the customer's name."""
    customer = conversation.get("customer") or {}
    if message.get("direction") != "in" or not profile_name or customer.get("version"):
        return {}
    if customer.get("name") == profile_name:
        return {}
    return {"customer.name": profile_name}


def new_conversation(workspace_id: str, number_id: str, customer: Document, at: datetime,
                     now: datetime) -> Document:
    """A conversation as its first event creates it."""
    return {
        "workspace_id": workspace_id,
        "number_id": number_id,
        "customer": {**customer, "version": 0},
        "last_message": None,
        "unread_count": 0,
        "has_unread": False,
        "awaiting_reply": False,
        "assignee": None,
        "assignee_id": None,
        "status": domain.OPEN,
        "snoozed_until": None,
        "window_expires_at": None,
        "last_customer_at": None,
        "updated_at": at,
        "created_at": now,
        "version": 1,
        "announced": False,
    }
