"""Ingest's Kafka consumers (the ``worker`` role): the sender and the media-job recorder.

- ``whatsapp.commands.v1``, group ``inbox-ingest-sender``: sends, mark-as-read and template syncs
  (sender.py, templates.py).
- ``whatsapp.events.v1``, group ``inbox-ingest-media``: records a fetch job for each received media
  message and commits at once; the fetching itself is :func:`inbox_ingest.media.media_retry_loop`. It
  takes a poll's records as a batch (inbox_core.kafka.subscribe_batch): nearly all are not media, and one
  commit per record kept it behind the topic under load.

The background loops the worker also runs (wrap each in a TaskComponent):
:func:`inbox_ingest.sender.send_retry_loop`, :func:`inbox_ingest.media.media_retry_loop` and
:func:`inbox_ingest.templates.template_sync_loop`.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from inbox_core.events import Event
from inbox_core.kafka import subscribe, subscribe_batch
from inbox_core.topics import WHATSAPP_COMMANDS, WHATSAPP_EVENTS, Topic
from inbox_ingest.graph import GraphClient
from inbox_ingest.media import MediaJobs, MediaStore
from inbox_ingest.sender import Sender
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import IngestStore
from inbox_ingest.templates import command_handler

SENDER_GROUP = "inbox-ingest-sender"
MEDIA_GROUP = "inbox-ingest-media"


def register(
    broker: KafkaBroker,
    store: IngestStore,
    settings: IngestSettings,
    graph: GraphClient,
    media_store: MediaStore,
    *,
    commands_topic: Topic | str = WHATSAPP_COMMANDS,
    events_topic: Topic | str = WHATSAPP_EVENTS,
    group_prefix: str = "",
) -> Sender:
    """Subscribes the sender and the media-job recorder on ``broker``; returns the sender (whose parked sends
    :func:`inbox_ingest.sender.send_retry_loop` retries).

    The topics and a group prefix can be changed for tests (the real topics are shared).
    """
    sender = Sender(broker, store, settings, graph, media_store, events_topic=events_topic,
                    sync_templates=command_handler(store, graph, broker, events_topic=events_topic,
                                                   deadline_s=settings.send_delivery_deadline_s))
    jobs = MediaJobs(store.db)

    async def record_media(event: Event) -> None:
        await jobs.record(event)

    subscribe(broker, commands_topic, group_id=f"{group_prefix}{SENDER_GROUP}", handler=sender.handle)
    subscribe_batch(broker, events_topic, group_id=f"{group_prefix}{MEDIA_GROUP}", handler=record_media)
    return sender
