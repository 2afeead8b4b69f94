"""The gateway service's HTTP application: the three-column HTTP API, agents and auth, and the live stream."""

from collections.abc import Mapping

from litestar import Litestar

from inbox_core.ops import ReadyCheck, ops_handlers


def create_app(checks: Mapping[str, ReadyCheck]) -> Litestar:
    return Litestar(route_handlers=[*ops_handlers(checks)])
