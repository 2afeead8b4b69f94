"""Ids that several services derive from the same facts, so that none has to ask another.

A customer is one per workspace and WhatsApp identity (``wa_id``, or the business-scoped user id where
the customer has only a username); a conversation is one per connected number and customer. Both
the customers and the conversations service see the same webhook event and derive the same ids from it,
which also makes a replayed event land on the same documents.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("3b0c2f4e-9a57-5b8e-a1d6-6c2f0e9b7d14")  # fixed forever: ids depend on it


def customer_key(wa_id: str | None, user_id: str | None) -> str:
    """The customer's WhatsApp identity: ``wa:<wa_id>``, else ``bsuid:<user_id>``."""
    if wa_id:
        return f"wa:{wa_id}"
    if user_id:
        return f"bsuid:{user_id}"
    raise ValueError("a customer needs a wa_id or a user_id")


def customer_id(workspace_id: str, wa_id: str | None, user_id: str | None = None) -> str:
    return "cus_" + uuid.uuid5(_NAMESPACE, f"customer:{workspace_id}:{customer_key(wa_id, user_id)}").hex[:24]


def conversation_id(workspace_id: str, phone_number_id: str, wa_id: str | None, user_id: str | None = None) -> str:
    key = customer_key(wa_id, user_id)
    return "cnv_" + uuid.uuid5(_NAMESPACE, f"conversation:{workspace_id}:{phone_number_id}:{key}").hex[:24]
