"""Events of ingest's own calls to the Graph API: the outcome of a send command, an inbound media file fetched
(or given up), and a business account's templates as Meta lists them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from inbox_core.events import EventData, event_type
from inbox_core.events.whatsapp.parts import MetaError


class SendResult(EventData):
    """The outcome of one ``whatsapp.commands.v1`` command (``command_id`` is its idempotency key)."""

    command_id: str
    phone_number_id: str
    waba_id: str | None = None
    wa_id: str = ""
    user_id: str | None = None
    attempts: int = 1
    # Copied from the command, so conversations can match the outcome without a lookup.
    conversation_id: str | None = None
    message_id: str | None = None


@event_type("whatsapp.send.accepted")
class SendAccepted(SendResult):
    """Meta accepted the message (not yet delivered); later statuses carry the same ``wamid``."""

    wamid: str
    message_status: str | None = None
    group_id: str | None = None


@event_type("whatsapp.send.failed")
class SendFailed(SendResult):
    """Meta refused (e.g. 131047 outside the 24-hour window), or we gave up retrying."""

    error: MetaError
    retryable: bool = False


@event_type("whatsapp.media.stored")
class MediaStored(EventData):
    """An inbound media file is in ingest's media store under ``storage_id`` ("wa-media-" + media_id)."""

    media_id: str
    storage_id: str
    mime_type: str | None = None
    size: int
    sha256: str
    wamid: str | None = None
    phone_number_id: str | None = None


@event_type("whatsapp.media.unavailable")
class MediaUnavailable(EventData):
    """Ingest gave up fetching an inbound media file (retries exhausted, Meta's 7 days passed, ...)."""

    media_id: str
    wamid: str | None = None
    reason: str
    phone_number_id: str | None = None
    attempts: int = 0


@event_type("whatsapp.templates.synced")
class TemplatesSynced(EventData):
    """One part of a business account's message templates as Meta lists them (``GET /{waba_id}/message_templates``).

    A sync is published in bounded parts (at most 250 templates and about 256 KiB each, so an account with
    thousands stays far under Kafka's 1 MiB message limit), all keyed ``waba:{waba_id}``, in order: ``part`` 0 to
    ``parts - 1``, sharing ``sync_id`` and ``synced_at``. A consumer applies each part as it comes and, once
    the last has come, forgets the templates that sync did not list. An event without these fields is a
    whole list (one part).
    """

    waba_id: str
    templates: list[dict[str, Any]] = Field(default_factory=list)
    sync_id: str | None = None
    part: int = Field(default=0, ge=0)
    parts: int = Field(default=1, ge=1)
    # When the sync began (the same in every part): a part of an older sync than the one last applied is ignored.
    synced_at: datetime | None = None
