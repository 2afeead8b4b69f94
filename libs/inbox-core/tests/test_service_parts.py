"""The shared parts of a service: settings groups read under the service's own prefix, the roles, the
database and Kafka components with their readiness checks and ops server (real servers), the relay and
compaction loops."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from inbox_core.service import ServiceSettings
from inbox_core.service_parts import Backends, outbox_relay, revision_compaction, runs_worker, serves_api
from inbox_core.service_settings import OutboxRelaySettings, RevisionRetentionSettings
from inbox_core.settings import InboxSettings
from inbox_testkit.ports import free_port


class ExampleSettings(ServiceSettings, OutboxRelaySettings, RevisionRetentionSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore")

    grpc_port: int = 50099


def test_the_groups_are_read_under_the_services_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_RELAY_INTERVAL_S", "0.5")
    monkeypatch.setenv("EXAMPLE_RETENTION_BATCH", "20")
    monkeypatch.setenv("RELAY_MIN_AGE_S", "99")  # another service's (unprefixed) name is not this one's
    settings = ExampleSettings()
    assert (settings.relay_interval_s, settings.retention_batch) == (0.5, 20)
    assert (settings.relay_min_age_s, settings.revision_retention_days, settings.retention_interval_s) == (10.0, 7.0,
                                                                                                           300.0)
    assert settings.grpc_port == 50099


def test_a_groups_field_keeps_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_RELAY_INTERVAL_S", "0")
    with pytest.raises(ValidationError, match="relay_interval_s"):
        ExampleSettings()


@pytest.mark.parametrize(("role", "api", "worker"), [("api", True, False), ("worker", False, True),
                                                      ("all", True, True)])
def test_a_role_runs_its_parts(role: str, api: bool, worker: bool) -> None:
    assert (serves_api(role), runs_worker(role)) == (api, worker)


async def test_backends_open_the_services_database_and_broker_and_report_them_ready(
        inbox_settings: InboxSettings) -> None:
    backends = Backends.connect(inbox_settings, "parts", metrics=False)
    assert backends.database.name == f"{inbox_settings.db_prefix}_parts"
    prepared: list[str] = []

    async def prepare() -> None:
        prepared.append(backends.database.name)

    port = free_port()
    components = [*backends.components(prepare), backends.ops(port)]
    assert [c.name for c in components] == ["database", "kafka", "ops"]
    started = []
    try:
        for component in components:
            await component.start()
            started.append(component)
        assert prepared == [backends.database.name]
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{port}/internal/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": True, "kafka": True}}
    finally:
        for component in reversed(started):
            await component.stop()


class RecordingStore:
    """Records the arguments the loops are started with (the loops themselves are the store's)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.called = asyncio.Event()

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None:
        self._record("relay", interval_s, min_age_s)

    async def compact_forever(self, interval_s: float, retention: timedelta, batch: int) -> None:
        self._record("compact", interval_s, retention, batch)

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        self.called.set()


async def test_the_relay_and_the_compaction_run_with_the_services_settings() -> None:
    settings = ExampleSettings(relay_interval_s=1.5, relay_min_age_s=4.0, revision_retention_days=2.0,
                               retention_interval_s=60.0, retention_batch=50)
    store = RecordingStore()
    loops = [outbox_relay(store, settings), revision_compaction(store, settings)]
    assert [loop.name for loop in loops] == ["outbox-relay", "revision-compaction"]
    for loop in loops:
        store.called.clear()
        await loop.start()
        await asyncio.wait_for(store.called.wait(), timeout=5)
        await loop.stop()
    assert store.calls == [("relay", (1.5, 4.0)), ("compact", (60.0, timedelta(days=2), 50))]
