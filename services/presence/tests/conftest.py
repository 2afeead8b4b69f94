"""Fixtures of the presence tests: a cluster of replicas (see presence_testkit)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from inbox_core.settings import InboxSettings
from inbox_testkit.infra import Infra

# The tests import their shared helpers (presence_testkit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from presence_testkit import Cluster


@pytest.fixture
async def cluster(infra: Infra, inbox_settings: InboxSettings) -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as stack:
        yield Cluster(infra, inbox_settings, stack)
