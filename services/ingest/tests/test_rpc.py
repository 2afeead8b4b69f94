"""Ingest's gRPC API through a real server: channels (token write-only), unrouted events, media
upload and download scoped to the workspace."""

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from inbox.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from inbox_core.devinfra import free_port
from inbox_core.events import Event
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker
from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_core.testing import Infra, TopicReader
from inbox_core.topics import WHATSAPP_COMMANDS
from inbox_ingest.media import MediaStore
from inbox_ingest.rpc import SERVICE_NAME, IngestRpc
from inbox_ingest.store import IngestStore


@pytest.fixture
async def ingest_api(inbox_settings: InboxSettings, mongo_client: Any) -> AsyncIterator[Any]:
    db = service_database(mongo_client, inbox_settings, "ingest")
    store = IngestStore(db)
    await store.ensure_indexes()
    broker = make_broker(inbox_settings, "ingest-test", registry=None)
    await broker.start()
    server = GrpcServer(free_port(), host="127.0.0.1")
    server.add(ingest_pb2_grpc.add_IngestServiceServicer_to_server, IngestRpc(store, MediaStore(db), broker),
               SERVICE_NAME)
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    stub.store = store
    yield stub
    await channel.close()
    await server.stop(0)
    await broker.stop()


async def test_channels_keep_their_token_to_themselves(ingest_api: Any, infra: Infra) -> None:
    number = f"pn-{uuid.uuid4().hex[:8]}"
    async with TopicReader(infra.kafka_bootstrap, WHATSAPP_COMMANDS.name) as commands:
        reply = await ingest_api.UpsertChannel(ingest_pb2.UpsertChannelRequest(
            channel=ingest_pb2.Channel(phone_number_id=number, workspace_id="w1", waba_id="waba-1",
                                       display_phone_number="+1 555 0100", name="Shop"),
            access_token="EAAG-secret-token"))

        def synced(records: list[Any]) -> list[Event]:
            return [e for e in (Event.from_bytes(r.value) for r in records)
                    if e.type == "whatsapp.command.sync_templates" and e.data.get("phone_number_id") == number]

        await commands.read(until=lambda rs: synced(rs), within=15)
    # A connected number offers its templates at once (not at the next periodic sync); no token leaks.
    assert [e.data["waba_id"] for e in synced(commands.records)] == ["waba-1"]
    assert not any(b"EAAG" in r.value for r in commands.records)
    assert reply.channel.has_access_token and reply.channel.name == "Shop"
    assert "EAAG" not in str(reply)
    # Renaming without a token keeps the stored one.
    await ingest_api.UpsertChannel(ingest_pb2.UpsertChannelRequest(
        channel=ingest_pb2.Channel(phone_number_id=number, workspace_id="w1", waba_id="waba-1", name="Shop 2")))
    stored = await ingest_api.store.get_channel(number, fresh=True)
    assert stored.access_token.get_secret_value() == "EAAG-secret-token" and stored.name == "Shop 2"
    listed = await ingest_api.ListChannels(ingest_pb2.ListChannelsRequest(workspace_id="w1"))
    assert [c.phone_number_id for c in listed.channels] == [number]
    assert not (await ingest_api.ListChannels(ingest_pb2.ListChannelsRequest(workspace_id="w2"))).channels
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await ingest_api.UpsertChannel(ingest_pb2.UpsertChannelRequest(
            channel=ingest_pb2.Channel(phone_number_id=number, workspace_id="w2", waba_id="waba-1")))
    assert taken.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as incomplete:
        await ingest_api.UpsertChannel(ingest_pb2.UpsertChannelRequest(channel=ingest_pb2.Channel(workspace_id="w1")))
    assert incomplete.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_media_round_trip_is_scoped_to_the_workspace(ingest_api: Any) -> None:
    data = bytes(range(256)) * 3000  # ~750 KB: several chunks each way

    async def upload() -> AsyncIterator[ingest_pb2.UploadMediaRequest]:
        yield ingest_pb2.UploadMediaRequest(info=ingest_pb2.MediaInfo(
            workspace_id="w1", mime_type="application/pdf", filename="invoice.pdf"))
        for start in range(0, len(data), 100_000):
            yield ingest_pb2.UploadMediaRequest(chunk=data[start:start + 100_000])

    stored = (await ingest_api.UploadMedia(upload())).info
    assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()

    parts = [m async for m in ingest_api.GetMedia(ingest_pb2.GetMediaRequest(
        workspace_id="w1", storage_id=stored.storage_id))]
    assert parts[0].info.filename == "invoice.pdf" and parts[0].info.mime_type == "application/pdf"
    assert b"".join(p.chunk for p in parts[1:]) == data
    for workspace, storage_id in (("w2", stored.storage_id), ("w1", "no-such-file"), ("", stored.storage_id)):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            _ = [m async for m in ingest_api.GetMedia(ingest_pb2.GetMediaRequest(
                workspace_id=workspace, storage_id=storage_id))]
        assert denied.value.code() == grpc.StatusCode.NOT_FOUND

    async def headless() -> AsyncIterator[ingest_pb2.UploadMediaRequest]:
        yield ingest_pb2.UploadMediaRequest(chunk=b"no info first")

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await ingest_api.UploadMedia(headless())
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unrouted_events_are_listed(ingest_api: Any) -> None:
    event = Event(type="whatsapp.message.received", data={"phone_number_id": "pn-nobody", "wamid": "wamid.X"})
    await ingest_api.store.record_unrouted([("pn-nobody:1", event)])
    listed = await ingest_api.ListUnrouted(ingest_pb2.ListUnroutedRequest(limit=5))
    mine = [e for e in listed.events if e.event_id == event.id]
    assert mine and mine[0].phone_number_id == "pn-nobody" and mine[0].event["data"]["wamid"] == "wamid.X"
