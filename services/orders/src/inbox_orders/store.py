"""The orders service's own MongoDB database: orders, pipeline stages and their history."""

from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.mongo import Document


class OrdersStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
