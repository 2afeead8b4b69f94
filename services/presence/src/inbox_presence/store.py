"""The presence service's own MongoDB database: who is online, composing and viewing (expiring state)."""

from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.mongo import Document


class PresenceStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
