"""``python -m inbox_gateway admin ...`` as an operator runs it (a process of its own): the first workspace
and admin, then connecting a number through a real ingest gRPC server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from gateway_testkit import FAST_PASSWORDS, JWT_SECRET, Server, Services, gateway_settings

from inbox_core.errors import InboxError
from inbox_core.events import Event
from inbox_core.settings import InboxSettings
from inbox_gateway import cli
from inbox_gateway.gateway import Gateway
from inbox_testkit.infra import Infra


async def admin(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, dict[str, Any], str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "inbox_gateway", "admin", *args], input=stdin, env=env,
                              capture_output=True, text=True, timeout=60)

    done = await asyncio.to_thread(run)
    out = json.loads(done.stdout) if done.returncode == 0 else {}
    return done.returncode, out, done.stderr


async def test_bootstrap_a_workspace_its_admin_and_a_number(infra: Infra, inbox_settings: InboxSettings,
                                                            mongo_client: Any, services: Services) -> None:
    env = {**os.environ, "INBOX_MONGO_URL": infra.mongo_url, "INBOX_DB_PREFIX": inbox_settings.db_prefix,
           "INBOX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "GATEWAY_JWT_SECRET": JWT_SECRET,
           "GATEWAY_INGEST_TARGET": services.servers["ingest"].address, "INBOX_LOG_LEVEL": "WARNING"}
    code, out, err = await admin(env, "create-workspace", "--name", "Acme", "--currency", "usd")
    assert code == 0, err
    workspace = out["workspace"]
    assert workspace["name"] == "Acme" and workspace["currency"] == "USD"

    # The password comes on stdin, so it is in no shell history.
    code, out, err = await admin(env, "create-agent", "--email", "Ana@Acme.test", "--name", "Ana",
                                 "--workspace", workspace["id"], "--role", "admin", stdin="a-long-password\n")
    assert code == 0, err
    assert out["agent"]["email"] == "ana@acme.test" and out["agent"]["created"] is True
    assert "a-long-password" not in json.dumps(out)
    # The other commands in-process (the same code, without a process start each).
    settings = gateway_settings(inbox_settings, ingest_target=services.servers["ingest"].address)
    with pytest.raises(InboxError) as missing:
        await cli.run(cli.parser().parse_args(["create-agent", "--email", "x@acme.test", "--name", "X",
                                               "--workspace", "ws_nope", "--password", "a-long-password"]), settings)
    assert missing.value.code == "not_found"

    services.own_number("106540352242922", "102290129340398", "EAAG-token")
    out = await cli.run(cli.parser().parse_args([
        "connect-number", "--workspace", workspace["id"], "--phone-number-id", "106540352242922",
        "--display-phone-number", "15550783881", "--name", "Shop", "--waba-id", "102290129340398",
        "--access-token", "EAAG-token"]), settings)
    assert out["number"] == {"id": "106540352242922", "workspace_id": workspace["id"],
                             "display_phone_number": "15550783881", "name": "Shop", "waba_id": "102290129340398",
                             "has_access_token": True}
    assert "EAAG-token" not in json.dumps(out)
    stored = await services.ingest.get_channel("106540352242922", fresh=True)
    assert stored is not None and stored.access_token.get_secret_value() == "EAAG-token"

    out = await cli.run(cli.parser().parse_args(["list-workspaces"]), settings)
    assert out["workspaces"][0]["agents"][0]["email"] == "ana@acme.test"

    # Meta sends for a number nobody connected: ingest keeps the event, the operator sees where it came from.
    stray = Event(type="whatsapp.message.received", data={"phone_number_id": "pn-stray", "waba_id": "waba-stray",
                                                          "wamid": "wamid.stray", "text": "hello?"})
    await services.ingest.record_unrouted([("pn-stray:1", stray)])
    out = await cli.run(cli.parser().parse_args(["list-unrouted", "--limit", "5"]), settings)
    (listed,) = [e for e in out["unrouted"] if e["event_id"] == stray.id]
    assert listed["phone_number_id"] == "pn-stray" and listed["waba_id"] == "waba-stray"
    assert listed["type"] == "whatsapp.message.received" and listed["received_at"].endswith("+00:00")
    assert "hello?" not in json.dumps(out)
    with pytest.raises(SystemExit):
        await cli.run(cli.parser().parse_args(["list-unrouted", "--limit", "0"]), settings)

    # The admin signs in (hashed with production argon2 parameters by the CLI) and sees its number.
    gw = Gateway(gateway_settings(inbox_settings, **services.targets()), client=mongo_client,
                 passwords=FAST_PASSWORDS, stream=False)
    await gw.start()  # its watch: the CLI is another process, whose changes it learns from the database
    try:
        async with Server(gw) as server, server.client() as client:
            response = await client.post("/api/auth/login", json={"email": "ana@acme.test",
                                                                  "password": "a-long-password"})
            assert response.status_code == 200, response.text
            client.headers["Authorization"] = f"Bearer {response.json()['token']}"
            numbers = (await client.get("/api/numbers")).json()["items"]
            assert [(n["id"], n["name"], n["unread_conversations"]) for n in numbers] == [
                ("106540352242922", "Shop", 0)]
            # A reset through the CLI is for an account that may be in other hands: every session of it ends.
            await cli.run(cli.parser().parse_args(["create-agent", "--email", "ana@acme.test", "--workspace",
                                                   workspace["id"], "--role", "admin", "--reset-password",
                                                   "--password", "another-long-password"]), settings)
            # Refused as soon as the gateway's watch sees the sessions version the revocation bumped (~1 s).
            deadline = time.monotonic() + 30
            while (await client.get("/api/me")).status_code != 401:
                assert time.monotonic() < deadline, "the revoked session still works"
                await asyncio.sleep(0.1)
    finally:
        await gw.stop()
