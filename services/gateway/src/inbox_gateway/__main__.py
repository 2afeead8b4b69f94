"""``python -m inbox_gateway [api|all]``: see inbox_core.service."""

from inbox_core.mongo import make_client, ping
from inbox_core.runtime import CallbackComponent, Component, HttpComponent
from inbox_core.service import entrypoint
from inbox_core.settings import load
from inbox_gateway.http import create_app
from inbox_gateway.settings import GatewaySettings


async def build(role: str) -> list[Component]:
    settings = load(GatewaySettings)
    client = make_client(settings.inbox, "gateway")
    checks = {"database": lambda: ping(client)}
    components: list[Component] = [CallbackComponent("database", stop=client.close)]
    components.append(HttpComponent("http", create_app(checks), settings.http_port))
    return components


def main() -> None:
    entrypoint("gateway", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
