"""The pytest plugin of the suite (loaded by the repository's root conftest.py): the session's servers and
what each test gets from them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from inbox_core.settings import InboxSettings
from inbox_testkit.infra import FerretPair, Infra, ferret_pair_servers, session_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with session_infra() as found:
        yield found


@pytest.fixture(scope="session")
def ferret_pair() -> Iterator[FerretPair]:
    with ferret_pair_servers() as pair:
        yield pair


@pytest.fixture
def inbox_settings(infra: Infra) -> InboxSettings:
    """Settings pointing at the test servers, with a database prefix of its own for each test."""
    return InboxSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        db_prefix=f"t{uuid.uuid4().hex[:10]}",
    )


@pytest.fixture
async def mongo_client(infra: Infra) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    yield client
    await client.close()

