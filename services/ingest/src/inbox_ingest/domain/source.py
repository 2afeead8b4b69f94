"""Where an item of a webhook came from (its entry, change and number), and the contacts beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inbox_ingest.domain.readers import str_or_none


@dataclass(frozen=True)
class Where:
    waba_id: str
    entry_time: datetime | None
    entry_time_raw: Any
    field: str
    phone_number_id: str | None = None
    display_phone_number: str | None = None

    def common(self) -> dict[str, Any]:
        return {
            "waba_id": self.waba_id,
            "phone_number_id": self.phone_number_id,
            "display_phone_number": self.display_phone_number,
            "field": self.field,
        }

    def fingerprint(self) -> list[Any]:
        return [self.waba_id, self.entry_time_raw, self.field, self.phone_number_id]


@dataclass
class Contacts:
    by_wa_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_user_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    only: dict[str, Any] | None = None

    @classmethod
    def of(cls, contacts: Any) -> Contacts:
        found = cls()
        items = [c for c in contacts if isinstance(c, dict)] if isinstance(contacts, list) else []
        for contact in items:
            wa_id, user_id = str_or_none(contact.get("wa_id")), str_or_none(contact.get("user_id"))
            if wa_id:
                found.by_wa_id.setdefault(wa_id, contact)
            if user_id:
                found.by_user_id.setdefault(user_id, contact)
        if len(items) == 1:
            found.only = items[0]
        return found

    def find(self, wa_id: str | None, user_id: str | None) -> dict[str, Any] | None:
        if wa_id and wa_id in self.by_wa_id:
            return self.by_wa_id[wa_id]
        if user_id and user_id in self.by_user_id:
            return self.by_user_id[user_id]
        if not wa_id and not user_id:
            return self.only  # nothing to match on: a lone contact can only be this one
        return None
