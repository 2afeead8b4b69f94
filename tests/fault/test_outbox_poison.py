"""A poison outbox entry: a customer revision whose event Kafka will never take (over its 1 MiB limit: a
customer's revision copies all of its orders, so one with thousands of orders gets there). It stands
first in the relay's queue, before revisions that a crash left unpublished.

Before, the relay stopped at the first entry that failed: every later revision of every tenant waited
behind it, for good. Now each entry is handled on its own: the poison one is parked with its reason after
three rounds (listed by ``python -m inbox_core.outbox customers list``, counted in
``inbox_outbox_parked_total``) and the ones behind it publish at once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from fault_kit import FaultStack
from pymongo import AsyncMongoClient

from inbox_core.events import Event
from inbox_core.mongo import service_database
from inbox_core.revisions import Outgoing, Revision, now_ms, revision_id
from inbox_core.topics import CUSTOMERS
from inbox_testkit.paths import REPO_ROOT

pytestmark = pytest.mark.timeout(120, func_only=True)

BEHIND = 5


async def _parked_metric(stack: FaultStack) -> float:
    total = 0.0
    async with httpx.AsyncClient(timeout=10) as client:
        for key in ("customers_ops", "customers_worker_ops"):
            text = (await client.get(f"http://127.0.0.1:{stack.ports[key]}/metrics")).text
            total += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                         if line.startswith('inbox_outbox_parked_total{source="customers"}'))
    return total


async def test_a_poison_outbox_entry_is_parked_and_the_entries_behind_it_publish(fault_stack: FaultStack) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(fault_stack.infra.mongo_url, tz_aware=True)
    revisions = service_database(client, fault_stack.settings, "customers")["customers_revisions"]
    run = uuid.uuid4().hex[:8]
    workspace = f"ws_poison_{run}"
    created = now_ms() - timedelta(minutes=1)  # older than the relay's grace: its writer is gone
    poison_doc = f"cus_poison_{run}"
    orders = [{"id": f"ord_{i}", "items": [{"sku": f"SKU-{i}", "name": "A long product name " * 10}]}
              for i in range(5000)]
    poison = Revision(poison_doc, 1, {"workspace_id": workspace}, [Outgoing(CUSTOMERS.name, poison_doc, Event(
        type="customer.updated", workspace_id=workspace, data={"customer": {"id": poison_doc, "orders": orders}}))],
        created_at=created)
    size = len(poison.events[0].event.to_bytes())
    assert size > 1024 * 1024, f"the poison event is {size} bytes"
    behind = [Revision(f"cus_behind_{run}_{i}", 1, {"workspace_id": workspace}, [Outgoing(
        CUSTOMERS.name, f"cus_behind_{run}_{i}", Event(type="test.outbox.probe", workspace_id=workspace,
                                                       data={"n": i}))], created_at=created + timedelta(seconds=1 + i))
        for i in range(BEHIND)]
    parked_before = await _parked_metric(fault_stack)
    try:
        started = time.monotonic()
        await revisions.insert_many([poison.to_doc()] + [r.to_doc() for r in behind])
        published_s = parked_s = None
        while published_s is None or parked_s is None:
            assert time.monotonic() - started < 60, (f"published after {published_s} s, parked after {parked_s} s\n"
                                                     + fault_stack.processes["customers"].output()[-5000:])
            ids = [r.id for r in behind]
            done = await revisions.count_documents({"_id": {"$in": ids}, "published": True})
            if published_s is None and done == BEHIND:
                published_s = time.monotonic() - started
            doc = await revisions.find_one({"_id": poison.id})
            if parked_s is None and doc is not None and doc.get("parked"):
                parked_s = time.monotonic() - started
            await asyncio.sleep(0.2)
        command = [sys.executable, "-m", "inbox_core.outbox", "customers", "list", "--source", "customers"]
        listed = subprocess.run(command, env=fault_stack.env, cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=60)
        assert listed.returncode == 0, listed.stderr
        entries = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        mine = [e for e in entries if e["entry_id"] == revision_id(poison_doc, 1)]
        parked_after = await _parked_metric(fault_stack)
    finally:
        await revisions.delete_many({"_id": {"$in": [poison.id] + [r.id for r in behind]}})
        await client.close()
    print(f"poison entry: one event of {size / 1024 / 1024:.2f} MiB, first in the queue; the {BEHIND} entries "
          f"behind it published after {published_s:.1f} s; the poison one parked after {parked_s:.1f} s")
    print(f"ops command lists it: {mine}; inbox_outbox_parked_total{{source=customers}} "
          f"{parked_before:.0f} -> {parked_after:.0f}")
    assert size > 1024 * 1024
    assert len(mine) == 1 and mine[0]["error_type"] == "MessageSizeTooLargeError" and mine[0]["attempts"] >= 3
    assert published_s is not None and parked_s is not None
    assert published_s < parked_s, "the entries behind it went out in the poison one's first round, not after"
    assert parked_after >= parked_before + 1
