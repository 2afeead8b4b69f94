"""Cross-service fixtures: the whole system as separate processes (see inbox_testkit.stack.Stack)."""

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from inbox_core.settings import InboxSettings
from inbox_testkit.infra import Infra
from inbox_testkit.stack import Stack


@pytest.fixture(scope="session")
def stack(infra: Infra) -> Iterator[Stack]:
    settings = InboxSettings(kafka_bootstrap=infra.kafka_bootstrap, mongo_url=infra.mongo_url,
                             db_prefix=f"stack{uuid.uuid4().hex[:8]}")
    home = Path(tempfile.mkdtemp(prefix="inbox-stack-"))
    running = Stack(infra, settings, home)
    try:
        running.start()
        yield running
    finally:
        running.stop()
