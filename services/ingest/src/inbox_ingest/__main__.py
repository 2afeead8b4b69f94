"""``python -m inbox_ingest [api|worker|all]``: see inbox_core.service.

``api`` serves Meta's webhook (HTTP) and the channels API (gRPC); ``worker`` sends commands to Meta,
fetches inbound media and syncs templates.
"""

from datetime import timedelta

from inbox.ingest.v1 import ingest_pb2_grpc
from inbox_core.runtime import CallbackComponent, Component, HttpComponent, TaskComponent
from inbox_core.service import entrypoint
from inbox_core.service_parts import Backends, grpc_component, runs_worker, serves_api
from inbox_core.settings import load
from inbox_ingest.consumers import register
from inbox_ingest.graph import GraphClient
from inbox_ingest.http import create_app
from inbox_ingest.intake import Intake
from inbox_ingest.media import MediaStore, media_retry_loop
from inbox_ingest.media_retention import MediaRetention, media_retention_loop
from inbox_ingest.rpc import SERVICE_NAME, IngestRpc
from inbox_ingest.sender import send_retry_loop
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import IngestStore, read_channels_file
from inbox_ingest.templates import template_sync_loop
from inbox_ingest.workers import purge_seen_loop, purge_unrouted_loop


async def build(role: str) -> list[Component]:
    settings = load(IngestSettings)
    backends = Backends.connect(settings.inbox, "ingest")
    store = IngestStore(backends.database)
    media = MediaStore(backends.database)
    broker = backends.broker
    channels = read_channels_file(settings.channels_file) if settings.channels_file else []

    async def start_database() -> None:
        await store.ensure_indexes()
        await media.ensure_indexes()
        await store.claim_existing_channels()
        await store.load_channels(channels)

    # The API asks it who owns a number being connected; the worker sends, fetches media, syncs templates.
    graph = GraphClient(settings.graph_api_base_url, settings.graph_timeout_s)
    components: list[Component] = [*backends.components(start_database), CallbackComponent("graph", stop=graph.aclose)]
    if serves_api(role):
        intake = Intake(store, broker, publish_timeout_s=settings.publish_timeout_s,
                        dedupe_days=settings.dedupe_days)
        # Listed before the HTTP server, so it is stopped after it: the last seen-marks are written.
        components.append(CallbackComponent("intake", stop=intake.flush))
        components.append(HttpComponent("http", create_app(settings, intake), settings.http_port))
        components.append(backends.ops(settings.ops_port))
        components.append(TaskComponent("purge-seen", lambda: purge_seen_loop(store)))
        unrouted_retention = timedelta(days=settings.unrouted_retention_days)
        components.append(TaskComponent("expire-unrouted", lambda: purge_unrouted_loop(store, unrouted_retention)))
        # Each upload's stream gets gRPC's default 64 KiB receive window, never more: with BDP probing the
        # window grew to megabytes per stream, so ten uploads waiting on the database buffered 100+ MiB in gRPC.
        components.append(grpc_component(settings.grpc_port, ingest_pb2_grpc.add_IngestServiceServicer_to_server,
                                         IngestRpc(store, media, graph, broker), SERVICE_NAME,
                                         options=[("grpc.http2.bdp_probe", 0)]))
    if runs_worker(role):
        sender = register(broker, store, settings, graph, media)  # before the broker starts
        components += [
            TaskComponent("send-retry", lambda: send_retry_loop(sender, settings)),
            TaskComponent("media-fetch", lambda: media_retry_loop(store, graph, media, broker, settings)),
            TaskComponent("media-retention", lambda: media_retention_loop(MediaRetention(media, settings), settings)),
            TaskComponent("template-sync", lambda: template_sync_loop(store, graph, broker, settings)),
            backends.consumer_lag(),
        ]
    if role == "worker":
        components.append(backends.ops(settings.worker_ops_port))
    return components


def main() -> None:
    entrypoint("ingest", build)


if __name__ == "__main__":
    main()
