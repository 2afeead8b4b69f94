"""``python -m inbox_gateway [api|all]`` runs the server (see inbox_core.service; the gateway has no
separate worker: its stream consumer belongs to each API replica); ``python -m inbox_gateway admin ...``
runs an administration command (see inbox_gateway.cli)."""

import sys

from inbox_core.ops import ops_app
from inbox_core.runtime import CallbackComponent, Component, HttpComponent
from inbox_core.service import entrypoint
from inbox_core.settings import load
from inbox_gateway.gateway import Gateway
from inbox_gateway.http import create_app
from inbox_gateway.settings import GatewaySettings


async def build(role: str) -> list[Component]:
    settings = load(GatewaySettings)
    gateway = Gateway(settings)
    # The app's lifespan starts and stops the gateway's parts (database, gRPC channels, stream feed).
    # Components stop in reverse order: the open streams are ended first, so the HTTP server's graceful
    # stop does not wait on them (each ends with `event: error` {"reason": "shutting_down"}; clients reconnect).
    return [HttpComponent("ops", ops_app({"database": gateway.ready}), settings.ops_port),
            HttpComponent("http", create_app(gateway), settings.http_port,
                          send_buffer_bytes=settings.send_buffer_bytes or None),
            CallbackComponent("streams", stop=gateway.close_streams)]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "admin":
        from inbox_gateway.cli import main as admin

        raise SystemExit(admin(sys.argv[2:]))
    entrypoint("gateway", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
