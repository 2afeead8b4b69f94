"""The content library: a workspace's text snippets and media, reused when sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inbox_conversations import domain, views
from inbox_conversations.outbox import utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.sending import MAX_TEXT, Agent
from inbox_core.errors import InvalidRequest, ValidationFailed
from inbox_core.events.conversations import Actor
from inbox_core.mongo import Document

LIBRARY_TYPES = frozenset({"text", "image", "video", "audio", "document"})


@dataclass(frozen=True)
class LibraryItem:
    id: str
    workspace_id: str
    title: str
    type: str
    text: str
    media: dict[str, Any] | None
    created_by: Actor | None
    created_at: datetime | None

    @classmethod
    def of(cls, doc: Document) -> LibraryItem:
        media = doc.get("media")
        return cls(id=doc["_id"], workspace_id=doc["workspace_id"], title=doc.get("title") or "",
                   type=doc.get("type") or "", text=doc.get("text") or "",
                   media=dict(media) if isinstance(media, dict) else None,
                   created_by=views.actor(doc.get("created_by")), created_at=doc.get("created_at"))


@dataclass(frozen=True)
class NewLibraryItem:
    workspace_id: str
    type: str | None  # None: not one we know
    agent: Agent
    title: str = ""
    text: str = ""
    upload_id: str = ""
    caption: str = ""
    filename: str = ""


class ContentLibrary:
    def __init__(self, repos: Repositories) -> None:
        self.repos = repos

    async def items(self, workspace_id: str) -> list[LibraryItem]:
        return [LibraryItem.of(d) for d in await self.repos.library.items(workspace_id)]

    async def add(self, new: NewLibraryItem) -> LibraryItem:
        if new.type not in LIBRARY_TYPES:
            raise InvalidRequest("a library item needs a type", {"field": "type"})
        doc: Document = {"_id": domain.new_id("lib_"), "workspace_id": new.workspace_id, "type": new.type,
                         "created_by": new.agent.doc(), "created_at": utcnow()}
        if new.type == "text":
            text = new.text.strip()
            if not text:
                raise InvalidRequest("a text snippet needs text", {"field": "text"})
            if len(text) > MAX_TEXT:
                raise ValidationFailed(f"a snippet has at most {MAX_TEXT} characters", {"field": "text"})
            doc["text"] = text
            doc["title"] = new.title.strip() or text[:40]
        else:
            if not new.upload_id:
                raise InvalidRequest("upload_id is required", {"field": "upload_id"})
            doc["media"] = {"id": new.upload_id, "caption": new.caption or None,
                            "filename": new.filename or None, "size": 0}
            doc["title"] = new.title.strip() or new.filename or new.type
        await self.repos.library.add(doc)
        return LibraryItem.of(doc)

    async def remove(self, workspace_id: str, item_id: str) -> None:
        await self.repos.library.remove(workspace_id, item_id)
