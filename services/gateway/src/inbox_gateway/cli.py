"""``python -m inbox_gateway admin ...``: create the first workspace and admin, connect numbers, see the events
of numbers nobody connected.

    python -m inbox_gateway admin create-workspace --name "Acme" --currency EUR
    python -m inbox_gateway admin create-agent --email ana@acme.test --name Ana --workspace ws_... --role admin
    python -m inbox_gateway admin connect-number --workspace ws_... --phone-number-id 1065... \\
        --display-phone-number 15550783881 --name "Acme shop" --waba-id 1022...
    python -m inbox_gateway admin list-workspaces
    python -m inbox_gateway admin list-unrouted --limit 20

Events of numbers no workspace has connected are kept by ingest, not dropped (Meta had its 200):
``list-unrouted`` shows the latest (number, business account, type, when), for an operator finding
which number Meta sends for that was never connected, or was connected under another id. They belong
to no workspace, so no workspace's API shows them. The message content stays in ingest (personal data).

Passwords and access tokens are read from the terminal (no echo) or from stdin when not given as flags,
so they need not appear in shell history. Each command prints one JSON object (secrets never).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from inbox.ingest.v1 import ingest_pb2
from inbox_core.errors import InboxError
from inbox_core.settings import load
from inbox_gateway.accounts import ROLES
from inbox_gateway.gateway import Gateway
from inbox_gateway.settings import GatewaySettings


def _secret(given: str | None, prompt: str) -> str:
    if given is not None:
        return given
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m inbox_gateway admin", description="Gateway administration")
    commands = root.add_subparsers(dest="command", required=True)

    ws = commands.add_parser("create-workspace", help="create a workspace; prints its id")
    ws.add_argument("--name", required=True)
    ws.add_argument("--currency", default=None, help="ISO 4217 (default: GATEWAY_DEFAULT_CURRENCY)")

    agent = commands.add_parser("create-agent", help="create an agent (or add an existing one) to a workspace")
    agent.add_argument("--email", required=True)
    agent.add_argument("--name", default=None, help="required for a new agent")
    agent.add_argument("--password", default=None, help="for a new agent; asked for when omitted")
    agent.add_argument("--workspace", required=True)
    agent.add_argument("--role", choices=ROLES, default="agent")
    agent.add_argument("--reset-password", action="store_true",
                       help="set the password of an existing agent (every session of it ends)")

    number = commands.add_parser("connect-number", help="connect a WhatsApp number to a workspace (ingest)")
    number.add_argument("--workspace", required=True)
    number.add_argument("--phone-number-id", required=True)
    number.add_argument("--display-phone-number", default="")
    number.add_argument("--name", default="")
    number.add_argument("--waba-id", required=True)
    number.add_argument("--access-token", default=None,
                        help="Meta's access token for the number; asked for when omitted (empty keeps the stored one)")

    commands.add_parser("list-workspaces", help="every workspace, with its agents")

    unrouted = commands.add_parser("list-unrouted", help="the latest events of numbers no workspace has connected")
    unrouted.add_argument("--limit", type=int, default=50, help="how many, newest first (1 to 500)")
    return root


async def run(args: argparse.Namespace, settings: GatewaySettings) -> dict[str, Any]:
    gateway = Gateway(settings, stream=False)
    await gateway.accounts.ensure_indexes()
    await gateway.upstream.start()
    try:
        return await _command(gateway, args)
    finally:
        await gateway.upstream.stop()
        await gateway.client.close()


async def _command(gateway: Gateway, args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "create-workspace":
        currency = (args.currency or gateway.settings.default_currency).upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise SystemExit(f"--currency must be an ISO 4217 code, not {currency!r}")
        workspace = await gateway.accounts.create_workspace(args.name.strip(), currency)
        return {"workspace": {"id": workspace.id, "name": workspace.name, "currency": workspace.currency}}
    if args.command == "create-agent":
        workspace = await gateway.accounts.get_workspace(args.workspace)
        agent = await gateway.accounts.find_agent(args.email)
        created = False
        if agent is None:
            if not args.name:
                raise SystemExit("--name is required for a new agent")
            password = _secret(args.password, "password: ")
            if len(password) < 10:
                raise SystemExit("the password needs at least 10 characters")
            password_hash = await gateway.auth.passwords.hash(password)
            agent, created = await gateway.accounts.create_agent(args.email, args.name, password_hash)
        elif args.reset_password:
            password = _secret(args.password, "new password: ")
            if len(password) < 10:
                raise SystemExit("the password needs at least 10 characters")
            await gateway.accounts.set_password(agent.id, await gateway.auth.passwords.hash(password))
            # A reset is for an account that may be in other hands: every session of it ends.
            await gateway.accounts.revoke_sessions_of(agent.id)
        await gateway.accounts.set_membership(workspace.id, agent.id, args.role)
        return {"agent": {"id": agent.id, "email": agent.email, "name": agent.name, "created": created},
                "workspace": {"id": workspace.id, "role": args.role}}
    if args.command == "connect-number":
        workspace = await gateway.accounts.get_workspace(args.workspace)
        token = _secret(args.access_token, "access token (empty keeps the stored one): ")
        channel = await gateway.upstream.upsert_channel(ingest_pb2.UpsertChannelRequest(
            channel=ingest_pb2.Channel(phone_number_id=args.phone_number_id, workspace_id=workspace.id,
                                waba_id=args.waba_id, display_phone_number=args.display_phone_number,
                                name=args.name),
            access_token=token))
        return {"number": {"id": channel.phone_number_id, "workspace_id": channel.workspace_id,
                           "display_phone_number": channel.display_phone_number, "name": channel.name,
                           "waba_id": channel.waba_id, "has_access_token": channel.has_access_token}}
    if args.command == "list-workspaces":
        out = []
        for workspace in await gateway.accounts.list_workspaces():
            members = await gateway.accounts.members(workspace.id)
            out.append({"id": workspace.id, "name": workspace.name, "currency": workspace.currency,
                        "agents": [{"id": x.agent.id, "email": x.agent.email, "name": x.agent.name, "role": x.role}
                                   for x in members]})
        return {"workspaces": out}
    if args.command == "list-unrouted":
        if not 1 <= args.limit <= 500:
            raise SystemExit("--limit must be from 1 to 500")
        events = await gateway.upstream.list_unrouted(args.limit)
        return {"unrouted": [{"event_id": e.event_id, "type": e.type, "phone_number_id": e.phone_number_id,
                              "waba_id": e.waba_id, "received_at": e.received_at.ToDatetime(UTC).isoformat()}
                             for e in events]}
    raise SystemExit(f"unknown command {args.command}")


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    settings = load(GatewaySettings)
    try:
        result = asyncio.run(run(args, settings))
    except InboxError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message}}), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
