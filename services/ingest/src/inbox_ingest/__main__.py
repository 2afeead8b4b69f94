"""``python -m inbox_ingest [api|all]``: see inbox_core.service."""

from inbox_core.mongo import make_client, ping
from inbox_core.runtime import CallbackComponent, Component, HttpComponent
from inbox_core.service import entrypoint
from inbox_core.settings import load

from inbox_ingest.http import create_app
from inbox_ingest.settings import IngestSettings


async def build(role: str) -> list[Component]:
    settings = load(IngestSettings)
    client = make_client(settings.inbox, "ingest")
    checks = {"database": lambda: ping(client)}
    components: list[Component] = [CallbackComponent("database", stop=client.close)]
    components.append(HttpComponent("http", create_app(checks), settings.http_port))
    return components


def main() -> None:
    entrypoint("ingest", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
