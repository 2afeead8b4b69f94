"""Ingest's gRPC API through a real server: channels (token write-only), unrouted events, media
upload and download scoped to the workspace."""

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from inbox.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from inbox_core.events import Event
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker
from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_core.topics import WHATSAPP_COMMANDS
from inbox_ingest import rpc as rpc_module
from inbox_ingest.graph import GraphClient
from inbox_ingest.media import MediaStore
from inbox_ingest.rpc import SERVICE_NAME, IngestRpc
from inbox_ingest.store import IngestStore
from inbox_testkit.graph import graph_stand_in
from inbox_testkit.infra import Infra
from inbox_testkit.kafka import TopicReader
from inbox_testkit.ports import free_port


@pytest.fixture
async def ingest_api(inbox_settings: InboxSettings, mongo_client: Any) -> AsyncIterator[Any]:
    """Ingest's gRPC server, its Graph API the sandbox (in-process), where the tests register numbers."""
    db = service_database(mongo_client, inbox_settings, "ingest")
    store = IngestStore(db)
    await store.ensure_indexes()
    broker = make_broker(inbox_settings, "ingest-test", registry=None)
    await broker.start()
    async with graph_stand_in() as meta:
        graph = GraphClient(meta.graph_url, timeout_s=10)
        server = GrpcServer(free_port(), host="127.0.0.1")
        server.add(ingest_pb2_grpc.add_IngestServiceServicer_to_server, IngestRpc(store, MediaStore(db), graph, broker),
                   SERVICE_NAME)
        await server.start()
        channel = grpc.aio.insecure_channel(server.address)
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        stub.store = store
        stub.meta = meta
        yield stub
        await channel.close()
        await server.stop(0)
        await graph.aclose()
    await broker.stop()


def numeric_id() -> str:
    return str(uuid.uuid4().int % 10**15)


def upsert(number: str, workspace: str, waba: str, token: str = "", name: str = "") -> Any:
    return ingest_pb2.UpsertChannelRequest(
        channel=ingest_pb2.Channel(phone_number_id=number, workspace_id=workspace, waba_id=waba, name=name),
        access_token=token)


async def refused(ingest_api: Any, request: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await ingest_api.UpsertChannel(request)
    return error.value.code()


async def test_channels_keep_their_token_to_themselves(ingest_api: Any, infra: Infra) -> None:
    number, waba = numeric_id(), numeric_id()
    ingest_api.meta.register(number, waba, "EAAG-secret-token")
    async with TopicReader(infra.kafka_bootstrap, WHATSAPP_COMMANDS.name) as commands:
        reply = await ingest_api.UpsertChannel(ingest_pb2.UpsertChannelRequest(
            channel=ingest_pb2.Channel(phone_number_id=number, workspace_id="w1", waba_id=waba,
                                       display_phone_number="+1 555 0100", name="Shop"),
            access_token="EAAG-secret-token"))

        def synced(records: list[Any]) -> list[Event]:
            return [e for e in (Event.from_bytes(r.value) for r in records)
                    if e.type == "whatsapp.command.sync_templates" and e.data.get("phone_number_id") == number]

        await commands.read(until=lambda rs: synced(rs), within=15)
    # A connected number offers its templates at once (not at the next periodic sync); no token leaks.
    assert [e.data["waba_id"] for e in synced(commands.records)] == [waba]
    assert not any(b"EAAG" in r.value for r in commands.records)
    assert reply.channel.has_access_token and reply.channel.name == "Shop"
    assert "EAAG" not in str(reply)
    # Renaming without a token keeps the stored one.
    await ingest_api.UpsertChannel(upsert(number, "w1", waba, name="Shop 2"))
    stored = await ingest_api.store.get_channel(number, fresh=True)
    assert stored.access_token.get_secret_value() == "EAAG-secret-token" and stored.name == "Shop 2"
    listed = await ingest_api.ListChannels(ingest_pb2.ListChannelsRequest(workspace_id="w1"))
    assert [c.phone_number_id for c in listed.channels] == [number]
    assert not (await ingest_api.ListChannels(ingest_pb2.ListChannelsRequest(workspace_id="w2"))).channels
    assert await refused(ingest_api, upsert(number, "w2", waba, "EAAG-secret-token")) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as incomplete:
        await ingest_api.UpsertChannel(ingest_pb2.UpsertChannelRequest(channel=ingest_pb2.Channel(workspace_id="w1")))
    assert incomplete.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_connecting_a_number_needs_proof_that_the_token_owns_it_under_that_account(ingest_api: Any) -> None:
    """Meta is asked (GET /{waba_id}/phone_numbers with the given token) before a number is connected: a
    made-up number, another tenant's business account or a token of another number connects nothing."""
    mine, my_waba, theirs, their_waba = numeric_id(), numeric_id(), numeric_id(), numeric_id()
    ingest_api.meta.register(mine, my_waba, "token-of-mine")
    ingest_api.meta.register(theirs, their_waba, "token-of-theirs")
    # Ids that are not Meta's (they would go into the Graph API's paths), a token no HTTP header can carry.
    assert await refused(ingest_api, upsert(mine, "w1", f"{my_waba}/../{their_waba}", "token-of-mine")) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert await refused(ingest_api, upsert(mine, "w1", my_waba, "token-\U0002ec88")) == \
        grpc.StatusCode.INVALID_ARGUMENT
    # No token: nothing to prove ownership with.
    assert await refused(ingest_api, upsert(mine, "w1", my_waba)) == grpc.StatusCode.INVALID_ARGUMENT
    # A made-up number claimed under my own account.
    assert await refused(ingest_api, upsert(numeric_id(), "w1", my_waba, "token-of-mine")) == \
        grpc.StatusCode.PERMISSION_DENIED
    # My number under their account, their number with my token, their account with my token.
    assert await refused(ingest_api, upsert(mine, "w1", their_waba, "token-of-mine")) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert await refused(ingest_api, upsert(theirs, "w1", their_waba, "token-of-mine")) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert await refused(ingest_api, upsert(theirs, "w1", my_waba, "token-of-mine")) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert await ingest_api.store.get_channel(theirs, fresh=True) is None
    # The right token for the right number and account: connected.
    connected = await ingest_api.UpsertChannel(upsert(mine, "w1", my_waba, "token-of-mine"))
    assert connected.channel.workspace_id == "w1"


async def test_a_business_account_belongs_to_one_workspace_and_claims_are_atomic(ingest_api: Any) -> None:
    waba, first, second = numeric_id(), numeric_id(), numeric_id()
    ingest_api.meta.register(first, waba, "token-a")
    ingest_api.meta.register(second, waba, "token-a")
    await ingest_api.UpsertChannel(upsert(first, "w1", waba, "token-a"))
    # Another number of the same account, from another workspace (with a token that owns it): refused,
    # so that template sync and routing by account never cross workspaces.
    assert await refused(ingest_api, upsert(second, "w2", waba, "token-a")) == grpc.StatusCode.NOT_FOUND
    assert await ingest_api.store.workspace_of_waba(waba) == "w1"
    await ingest_api.UpsertChannel(upsert(second, "w1", waba, "token-a"))  # the same workspace may

    # Eight workspaces connect one new number of a new account at once: exactly one gets it.
    race_waba, race_number = numeric_id(), numeric_id()
    ingest_api.meta.register(race_number, race_waba, "token-r")
    answers = await asyncio.gather(*(ingest_api.UpsertChannel(upsert(race_number, f"race-{n}", race_waba, "token-r"))
                                     for n in range(8)), return_exceptions=True)
    winners = [a for a in answers if not isinstance(a, BaseException)]
    assert len(winners) == 1, answers
    assert all(isinstance(a, grpc.aio.AioRpcError) and a.code() == grpc.StatusCode.NOT_FOUND
               for a in answers if a not in winners)
    stored = await ingest_api.store.get_channel(race_number, fresh=True)
    assert stored is not None and stored.workspace_id == winners[0].channel.workspace_id


async def test_media_round_trip_is_scoped_to_the_workspace(ingest_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
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

    # Kept by a library item: only by the workspace that owns it.
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await ingest_api.KeepMedia(ingest_pb2.KeepMediaRequest(workspace_id="w2", storage_id=stored.storage_id))
    assert other.value.code() == grpc.StatusCode.NOT_FOUND
    kept = await ingest_api.KeepMedia(ingest_pb2.KeepMediaRequest(workspace_id="w1", storage_id=stored.storage_id))
    assert kept.info.sha256 == stored.sha256

    # Past the limit the call ends with too_large (a 413 at the gateway), and nothing of the file is kept.
    monkeypatch.setattr(rpc_module, "MAX_UPLOAD_BYTES", 200_000)
    with pytest.raises(grpc.aio.AioRpcError) as too_big:
        await ingest_api.UploadMedia(upload())
    assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(too_big.value.trailing_metadata() or ())["inbox-error-code"] == "too_large"

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
