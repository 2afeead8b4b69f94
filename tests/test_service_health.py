"""Every service starts against the real Kafka and database, answers its health check on its real
port, and stops cleanly (exit code 0) on SIGTERM, as Kubernetes stops it."""

from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inbox_core.settings import InboxSettings
from inbox_testkit.infra import Infra
from inbox_testkit.ports import free_port
from inbox_testkit.processes import ServiceProcess, service_env

GRPC_SERVICES = {
    "conversations": "inbox.conversations.v1.ConversationsService",
    "customers": "inbox.customers.v1.CustomersService",
    "orders": "inbox.orders.v1.OrdersService",
    "presence": "inbox.presence.v1.PresenceService",
}
HTTP_SERVICES = ["gateway", "ingest", "sandbox"]
# Public HTTP services whose ops endpoints are on a port of their own (the sandbox, development only, keeps
# them on its one port).
OWN_OPS_PORT = {"gateway", "ingest"}
SECRETS = {
    "GATEWAY_JWT_SECRET": "test-jwt-secret-0123456789",
    "INGEST_META_APP_SECRET": "test-app-secret",
    "INGEST_META_VERIFY_TOKEN": "test-verify-token",
    "SANDBOX_META_APP_SECRET": "test-app-secret",
    "SANDBOX_ACCESS_TOKEN": "test-access-token",
}
# HTTP services that also serve gRPC: their gRPC port must be free too, and answer health.
ALSO_GRPC = {"ingest": "inbox.ingest.v1.IngestService"}


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_grpc_service_health(name: str, infra: Infra, inbox_settings: InboxSettings, tmp_path: Path) -> None:
    grpc_port, ops_port = free_port(), free_port()
    env = service_env(infra, inbox_settings, **SECRETS,
                      **{f"{name.upper()}_GRPC_PORT": str(grpc_port), f"{name.upper()}_OPS_PORT": str(ops_port)})
    service = ServiceProcess(name, "all", env, tmp_path / f"{name}.log").start()
    try:
        service.wait_port(grpc_port)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for svc in ("", GRPC_SERVICES[name]):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=svc), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as unknown:
                stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        service.wait_port(ops_port)
        ready = httpx.get(f"http://127.0.0.1:{ops_port}/internal/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": True, "kafka": True}
        assert "python_gc_objects_collected_total" in httpx.get(f"http://127.0.0.1:{ops_port}/metrics").text
        assert service.terminate() == 0, service.output()
    finally:
        service.kill()


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_http_service_health(name: str, infra: Infra, inbox_settings: InboxSettings, tmp_path: Path) -> None:
    port, grpc_port, ops_port = free_port(), free_port(), free_port()
    env = service_env(infra, inbox_settings, **SECRETS, **{f"{name.upper()}_HTTP_PORT": str(port),
                                                          f"{name.upper()}_GRPC_PORT": str(grpc_port),
                                                          f"{name.upper()}_OPS_PORT": str(ops_port)})
    service = ServiceProcess(name, "all", env, tmp_path / f"{name}.log").start()
    try:
        service.wait_port(port)
        if name in ALSO_GRPC:
            service.wait_port(grpc_port)
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=ALSO_GRPC[name]), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        ops = ops_port if name in OWN_OPS_PORT else port
        service.wait_port(ops)
        assert httpx.get(f"http://127.0.0.1:{ops}/internal/alive", timeout=10).json() == {"status": "alive"}
        ready = httpx.get(f"http://127.0.0.1:{ops}/internal/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert "python_gc_objects_collected_total" in httpx.get(f"http://127.0.0.1:{ops}/metrics", timeout=10).text
        if name in OWN_OPS_PORT:
            # Not on the public port, where the ingress (or Meta) would expose them.
            for path in ("/internal/ready", "/internal/alive", "/metrics"):
                assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code in (401, 404), path
        assert service.terminate() == 0, service.output()
    finally:
        service.kill()


def test_missing_secret_fails_fast_with_the_variable_name(
    infra: Infra, inbox_settings: InboxSettings, tmp_path: Path
) -> None:
    env = service_env(infra, inbox_settings)
    env.pop("INGEST_META_APP_SECRET", None)
    env["INGEST_META_VERIFY_TOKEN"] = "x"
    service = ServiceProcess("ingest", "all", env, tmp_path / "ingest.log").start()
    assert service.proc is not None
    assert service.proc.wait(30) == 2
    assert "INGEST_META_APP_SECRET" in service.output()
