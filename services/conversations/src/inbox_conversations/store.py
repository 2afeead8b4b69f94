"""The conversations service's own MongoDB database.

Conversations, messages, notes, activity timeline, templates and the content library.
"""

from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.mongo import Document


class ConversationsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
