"""gRPC servicer of inbox.ingest.v1.IngestService: channels, unrouted events, stored media.

Every media call is scoped to a workspace: a file belongs to the workspace that uploaded it, or, for
a customer's inbound file, to the workspace of the number it came in on.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
from faststream.kafka import KafkaBroker
from google.protobuf import json_format, struct_pb2
from pydantic import SecretStr

from inbox.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from inbox_core.errors import Forbidden, InvalidRequest, NotFound, Unavailable
from inbox_core.events import Event
from inbox_core.events.commands import SyncTemplatesCommand
from inbox_core.kafka import publish
from inbox_core.topics import WHATSAPP_COMMANDS
from inbox_ingest.domain.media import MAX_MEDIA_BYTES
from inbox_ingest.graph import GraphClient, GraphError
from inbox_ingest.media import MediaStore, StoredMedia
from inbox_ingest.store import Channel, IngestStore

SERVICE_NAME = "inbox.ingest.v1.IngestService"
_META_ID = re.compile(r"\d{1,32}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
# Meta's largest media (documents) is 100 MB.
MAX_UPLOAD_BYTES = MAX_MEDIA_BYTES
CHUNK = 256 * 1024


def _channel_pb(channel: Channel) -> ingest_pb2.Channel:
    return ingest_pb2.Channel(
        phone_number_id=channel.phone_number_id, workspace_id=channel.workspace_id, waba_id=channel.waba_id,
        display_phone_number=channel.display_phone_number, name=channel.name,
        has_access_token=bool(channel.access_token.get_secret_value()),
    )


def _info_pb(stored: StoredMedia, workspace_id: str) -> ingest_pb2.MediaInfo:
    info = ingest_pb2.MediaInfo(storage_id=stored.storage_id, workspace_id=workspace_id,
                                mime_type=stored.mime_type, filename=stored.filename or "",
                                size=stored.size, sha256=stored.sha256)
    if stored.created_at is not None:
        info.created_at.FromDatetime(stored.created_at)
    return info


class IngestRpc(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, store: IngestStore, media: MediaStore, graph: GraphClient,
                 broker: KafkaBroker | None = None) -> None:
        self.store = store
        self.media = media
        self.graph = graph
        self.broker = broker

    async def _prove_ownership(self, phone_number_id: str, waba_id: str, token: str) -> None:
        """Asks Meta whether the token owns the number under that business account: a workspace never
        connects a number or an account on its word alone (another tenant's waba_id would route its
        templates, a made-up number another's webhooks)."""
        try:
            numbers = await self.graph.phone_numbers_of(waba_id, SecretStr(token))
        except GraphError as exc:
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                raise Unavailable("Meta could not be asked who owns the number; retry shortly") from None
            raise Forbidden("the access token does not give access to this business account",
                            {"waba_id": waba_id, "meta_code": exc.error.code}) from None
        if phone_number_id not in numbers:
            raise Forbidden("the number is not in this business account (as the access token sees it)",
                            {"phone_number_id": phone_number_id, "waba_id": waba_id})

    async def UpsertChannel(self, request: ingest_pb2.UpsertChannelRequest,
                            context: grpc.aio.ServicerContext[Any, Any]) -> ingest_pb2.UpsertChannelResponse:
        c = request.channel
        if not c.phone_number_id or not c.workspace_id or not c.waba_id:
            raise InvalidRequest("phone_number_id, workspace_id and waba_id are required")
        # Meta's ids are digits, and they go into Graph API paths: nothing else may (no "/", "?", "..").
        if not (_META_ID.fullmatch(c.phone_number_id) and _META_ID.fullmatch(c.waba_id)):
            raise InvalidRequest("phone_number_id and waba_id are Meta's ids: digits only")
        if request.access_token and not _TOKEN.fullmatch(request.access_token):
            raise InvalidRequest("the access token must be printable ASCII (it is sent in an HTTP header)")
        existing = await self.store.get_channel(c.phone_number_id, fresh=True)
        if existing is not None and existing.workspace_id != c.workspace_id:
            # One number, one workspace: taking another workspace's number would route its customers away.
            raise NotFound("this number is connected to another workspace")
        token = request.access_token or (existing.access_token.get_secret_value() if existing else "")
        if not token:
            raise InvalidRequest("an access token is needed to connect a number", {"field": "access_token"})
        if existing is None or existing.waba_id != c.waba_id or request.access_token:
            await self._prove_ownership(c.phone_number_id, c.waba_id, token)
        channel = Channel(phone_number_id=c.phone_number_id, workspace_id=c.workspace_id, waba_id=c.waba_id,
                          display_phone_number=c.display_phone_number, name=c.name, access_token=token)
        await self.store.upsert_channel(channel)
        if self.broker is not None:
            # A newly connected number should offer its templates now, not at the next periodic sync.
            command = SyncTemplatesCommand(waba_id=channel.waba_id, phone_number_id=channel.phone_number_id)
            await publish(self.broker, WHATSAPP_COMMANDS, f"{channel.phone_number_id}:templates",
                          Event.of(command, workspace_id=channel.workspace_id))
        return ingest_pb2.UpsertChannelResponse(channel=_channel_pb(channel))

    async def ListChannels(self, request: ingest_pb2.ListChannelsRequest,
                           context: grpc.aio.ServicerContext[Any, Any]) -> ingest_pb2.ListChannelsResponse:
        channels = await self.store.list_channels(request.workspace_id or None)
        return ingest_pb2.ListChannelsResponse(channels=[_channel_pb(c) for c in channels])

    async def ListUnrouted(self, request: ingest_pb2.ListUnroutedRequest,
                           context: grpc.aio.ServicerContext[Any, Any]) -> ingest_pb2.ListUnroutedResponse:
        limit = min(max(request.limit or 50, 1), 500)
        out = ingest_pb2.ListUnroutedResponse()
        for doc in await self.store.list_unrouted(limit):
            item = out.events.add(event_id=doc["_id"], type=doc.get("type", ""),
                                  phone_number_id=doc.get("phone_number_id") or "", waba_id=doc.get("waba_id") or "")
            item.received_at.FromDatetime(doc["received_at"])
            event = struct_pb2.Struct()
            json_format.ParseDict(json.loads(doc.get("event_json") or "{}"), event)
            item.event.CopyFrom(event)
        return out

    async def UploadMedia(self, request_iterator: AsyncIterator[ingest_pb2.UploadMediaRequest],
                          context: grpc.aio.ServicerContext[Any, Any]) -> ingest_pb2.UploadMediaResponse:
        """The file goes into GridFS chunk by chunk as its messages arrive (never whole in memory); past
        MAX_UPLOAD_BYTES the call ends with TooLarge and nothing of it is kept."""
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("info"):
            raise InvalidRequest("the first message must carry the file's info")
        info = first.info
        if not info.workspace_id:
            raise InvalidRequest("workspace_id is required")
        if not info.mime_type:
            raise InvalidRequest("mime_type is required")

        async def chunks() -> AsyncIterator[bytes]:
            async for message in request_iterator:
                if message.HasField("info"):
                    raise InvalidRequest("the file's info comes once, in the first message")
                yield message.chunk

        stored = await self.media.write(
            chunks(), info.mime_type, info.filename or None, max_bytes=MAX_UPLOAD_BYTES,
            metadata={"workspace_id": info.workspace_id, "source": "upload"},
            too_large=f"files are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        return ingest_pb2.UploadMediaResponse(info=_info_pb(stored, info.workspace_id))

    async def GetMedia(self, request: ingest_pb2.GetMediaRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[ingest_pb2.GetMediaResponse]:
        stored = await self.media.info(request.storage_id) if request.storage_id else None
        if stored is None or not await self._belongs(stored, request.workspace_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such media",
                                trailing_metadata=(("inbox-error-code", NotFound.code),))
            return
        _, chunks = await self.media.open(stored.storage_id)
        yield ingest_pb2.GetMediaResponse(info=_info_pb(stored, request.workspace_id))
        async for chunk in chunks:
            for start in range(0, len(chunk), CHUNK):
                yield ingest_pb2.GetMediaResponse(chunk=chunk[start:start + CHUNK])

    async def KeepMedia(self, request: ingest_pb2.KeepMediaRequest,
                        context: grpc.aio.ServicerContext[Any, Any]) -> ingest_pb2.KeepMediaResponse:
        stored = await self.media.info(request.storage_id) if request.storage_id else None
        if stored is None or not await self._belongs(stored, request.workspace_id):
            raise NotFound("no such media", {"storage_id": request.storage_id})
        await self.media.mark_kept(stored.storage_id)
        return ingest_pb2.KeepMediaResponse(info=_info_pb(stored, request.workspace_id))

    async def _belongs(self, stored: StoredMedia, workspace_id: str) -> bool:
        if not workspace_id:
            return False
        owner = stored.metadata.get("workspace_id")
        if owner:
            return bool(owner == workspace_id)
        number = stored.metadata.get("phone_number_id")
        channel = await self.store.get_channel(str(number)) if number else None
        return channel is not None and channel.workspace_id == workspace_id

