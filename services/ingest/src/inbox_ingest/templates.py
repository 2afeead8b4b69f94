"""Template sync: every business account's message templates, fetched from Meta and published.

``GET /{waba_id}/message_templates`` page by page (``paging.cursors.after``, else ``paging.next``),
then the list as ``whatsapp.templates.synced`` events in bounded parts (:func:`template_parts`), keyed
``waba:{waba_id}`` so they arrive in order; a single event with thousands of templates would exceed Kafka's
message size and never be published. Conversations
owns templates; this only tells it what Meta has. Runs on ``whatsapp.command.sync_templates`` and
every ``template_sync_interval_s`` for each WABA of the connected numbers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaBroker
from pydantic import SecretStr

from inbox_core.events import Event, utcnow
from inbox_core.events.commands import SyncTemplatesCommand
from inbox_core.events.whatsapp import TemplatesSynced
from inbox_core.kafka import publish
from inbox_core.topics import WHATSAPP_EVENTS, Topic
from inbox_ingest.domain.sending import next_page
from inbox_ingest.graph import GraphClient, GraphError
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import Channel, IngestStore

log = logging.getLogger("inbox.ingest.templates")

# A guard against a paging loop that never ends (a WABA has at most a few thousand templates).
MAX_PAGES = 500
# Bounds of one whatsapp.templates.synced event: a quarter of Kafka's default 1 MiB message limit.
PART_MAX_TEMPLATES = 250
PART_MAX_BYTES = 256 * 1024


def template_parts(templates: list[dict[str, Any]], *, max_templates: int = PART_MAX_TEMPLATES,
                   max_bytes: int = PART_MAX_BYTES) -> list[list[dict[str, Any]]]:
    """The list cut in order into parts of at most ``max_templates`` and about ``max_bytes`` of JSON each
    (a template larger than that alone is a part of its own; Meta's are a few KB at most). Never empty:
    an account without templates is one empty part, so the consumer still forgets the old ones."""
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for template in templates:
        length = len(json.dumps(template, separators=(",", ":"), default=str)) + 1
        if parts[-1] and (len(parts[-1]) >= max_templates or size + length > max_bytes):
            parts.append([])
            size = 0
        parts[-1].append(template)
        size += length
    return parts


async def fetch_templates(graph: GraphClient, waba_id: str, token: SecretStr,
                          page_size: int = 100) -> list[dict[str, Any]]:
    templates: list[dict[str, Any]] = []
    after: str | None = None
    next_url: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = await graph.templates_page(waba_id, token, after=after, next_url=next_url, limit=page_size)
        data = page.get("data")
        if isinstance(data, list):
            templates.extend(t for t in data if isinstance(t, dict))
        after, next_url = next_page(page)
        if after is None and next_url is None:
            return templates
        marker = after or next_url or ""
        if marker in seen:
            log.warning("templates of %s: the same page cursor came twice; stopping", waba_id)
            return templates
        seen.add(marker)
    log.warning("templates of %s: more than %d pages; stopping", waba_id, MAX_PAGES)
    return templates


def _channel_for(channels: list[Channel], waba_id: str) -> Channel | None:
    with_token = [c for c in channels if c.waba_id == waba_id and c.access_token.get_secret_value()]
    return with_token[0] if with_token else None


async def sync_waba(store: IngestStore, graph: GraphClient, broker: KafkaBroker, waba_id: str, *,
                    events_topic: Topic | str = WHATSAPP_EVENTS, page_size: int = 100) -> int | None:
    """Fetches and publishes one WABA's templates; returns how many, or None when no number has it."""
    channel = _channel_for(await store.list_channels(), waba_id)
    if channel is None:
        log.warning("templates of %s: no connected number of that business account", waba_id)
        return None
    synced_at = utcnow()
    templates = await fetch_templates(graph, waba_id, channel.access_token, page_size)
    parts = template_parts(templates)
    sync_id = uuid.uuid4().hex
    for n, part in enumerate(parts):
        synced = TemplatesSynced(waba_id=waba_id, templates=part, sync_id=sync_id, part=n, parts=len(parts),
                                 synced_at=synced_at)
        event = Event.of(synced, workspace_id=channel.workspace_id, occurred_at=synced_at)
        await publish(broker, events_topic, f"waba:{waba_id}", event)
    log.info("templates of %s: %d published in %d parts", waba_id, len(templates), len(parts))
    return len(templates)


async def sync_all(store: IngestStore, graph: GraphClient, broker: KafkaBroker, *,
                   events_topic: Topic | str = WHATSAPP_EVENTS, page_size: int = 100) -> dict[str, int | None]:
    """Every WABA of the connected numbers, once each; one failing does not stop the others."""
    results: dict[str, int | None] = {}
    wabas = sorted({c.waba_id for c in await store.list_channels() if c.waba_id})
    for waba_id in wabas:
        try:
            results[waba_id] = await sync_waba(store, graph, broker, waba_id, events_topic=events_topic,
                                               page_size=page_size)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Meta refusing, or Kafka: the next account still gets its sync this round
            log.warning("templates of %s not synced: %r", waba_id, exc)
            results[waba_id] = None
    return results


def command_handler(store: IngestStore, graph: GraphClient, broker: KafkaBroker, *,
                    events_topic: Topic | str = WHATSAPP_EVENTS,
                    deadline_s: float = 60.0) -> Callable[[SyncTemplatesCommand], Awaitable[None]]:
    """The handler of ``whatsapp.command.sync_templates``: sync now, within ``deadline_s``.

    Meta failing, even passingly, is logged and left to the next periodic sync: the command shares its
    partition with other tenants' sends, so it is never retried from there (nor held past the deadline).
    """

    async def handle(command: SyncTemplatesCommand) -> None:
        try:
            async with asyncio.timeout(deadline_s):
                await sync_waba(store, graph, broker, command.waba_id, events_topic=events_topic)
        except (GraphError, TimeoutError) as exc:
            log.warning("templates of %s not synced now (%r); the periodic sync will", command.waba_id, exc)

    return handle


async def template_sync_loop(store: IngestStore, graph: GraphClient, broker: KafkaBroker, settings: IngestSettings,
                             *, events_topic: Topic | str = WHATSAPP_EVENTS) -> None:
    """Syncs every WABA now and then every ``template_sync_interval_s`` (wrap in a TaskComponent)."""
    while True:
        try:
            await sync_all(store, graph, broker, events_topic=events_topic)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("template sync failed; trying again at the next interval")
        await asyncio.sleep(settings.template_sync_interval_s)
