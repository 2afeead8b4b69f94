"""``python -m inbox_sandbox [api|all]``: see inbox_core.service."""

from inbox_core.ops import ReadyCheck
from inbox_core.runtime import Component, HttpComponent
from inbox_core.service import entrypoint
from inbox_core.settings import load
from inbox_sandbox.http import create_app
from inbox_sandbox.settings import SandboxSettings


async def build(role: str) -> list[Component]:
    settings = load(SandboxSettings)
    checks: dict[str, ReadyCheck] = {}
    components: list[Component] = []
    components.append(HttpComponent("http", create_app(settings, checks), settings.http_port))
    return components


def main() -> None:
    entrypoint("sandbox", build, roles=("api", "all"))


if __name__ == "__main__":
    main()
