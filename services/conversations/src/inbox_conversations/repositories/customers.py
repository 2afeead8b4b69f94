"""The ``customers`` collection: the newest name and phone of each customer (from inbox.customers.v1),
so a conversation created after the customers service spoke starts from them."""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.mongo import Document


class CustomerCopies:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["customers"]

    async def remember(self, customer: Document) -> bool:
        """Keeps the newest copy of a customer (a conversation created later starts from it)."""
        version = int(customer["version"])
        try:
            result = await self.collection.update_one(
                {"_id": customer["id"], "version": {"$lt": version}},
                {"$set": {"name": customer.get("name") or "", "phone": customer.get("phone") or "",
                          "version": version}},
                upsert=True,
            )
        except DuplicateKeyError:  # a newer version is there: the upsert's insert collided
            return False
        return bool(result.modified_count or result.upserted_id)

    async def get(self, customer_id: str) -> Document | None:
        return await self.collection.find_one({"_id": customer_id})
