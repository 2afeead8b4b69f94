"""Message templates: the syncs ingest publishes, their status changes, and which a number may send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inbox_conversations import domain
from inbox_conversations.repositories import Repositories
from inbox_core.events.whatsapp import TemplatesSynced, TemplateStatusChanged
from inbox_core.mongo import Document


class TemplateBook:
    def __init__(self, repos: Repositories) -> None:
        self.repos = repos

    async def synced(self, occurred_at: datetime, workspace_id: str, synced: TemplatesSynced) -> None:
        """One part of a sync (see Templates.apply_sync); the numbers it names are recorded."""
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
            await self.repos.numbers.ensure(workspace_id, number_id, synced.waba_id)
        synced_at = domain.to_ms(synced.synced_at or occurred_at)
        await self.repos.templates.apply_sync(workspace_id, synced.waba_id, templates, synced_at,
                                              last=synced.part >= synced.parts - 1)

    async def status_changed(self, occurred_at: datetime, workspace_id: str, change: TemplateStatusChanged) -> None:
        if change.message_template_name and change.waba_id:
            await self.repos.templates.set_status(workspace_id, change.waba_id, change.message_template_name,
                                                  change.message_template_language, change.event,
                                                  domain.to_ms(occurred_at))

    async def accounts_of(self, workspace_id: str, number_id: str) -> list[str]:
        """The business accounts whose templates a number may send: its own; where the number has not
        been seen in an event yet, the workspace's only account (if it has exactly one)."""
        waba = await self.repos.numbers.waba(workspace_id, number_id)
        if waba:
            return [waba]
        wabas = await self.repos.templates.wabas_of(workspace_id)
        return wabas if len(wabas) == 1 else []

    async def listed(self, workspace_id: str, number_id: str) -> list[Document]:
        """The templates a number may send (all of the workspace's when no number is given)."""
        wabas = await self.accounts_of(workspace_id, number_id) if number_id else None
        return await self.repos.templates.of_accounts(workspace_id, wabas)

    async def find(self, workspace_id: str, number_id: str, name: str, language: str) -> Document | None:
        return await self.repos.templates.find(workspace_id, await self.accounts_of(workspace_id, number_id),
                                               name, language)
