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
    # Every client of the session's stack (the API tests, the fuzzer's logins, the browser tests) comes from
    # 127.0.0.1: the per-address login limit would otherwise refuse the browser tests' sign-ins after the
    # fuzzer's, depending on timing. The limit itself is tested in services/gateway/tests/test_auth.py.
    running = Stack(infra, settings, home, extra_env={"GATEWAY_LOGIN_MAX_PER_IP": "100000"})
    try:
        running.start()
        yield running
    finally:
        running.stop()
