"""The gateway service's HTTP application: the three-column HTTP API, agents and auth, and the live stream."""

from collections.abc import Mapping

from inbox_core.ops import ReadyCheck, ops_handlers
from litestar import Litestar


def create_app(checks: Mapping[str, ReadyCheck]) -> Litestar:
    return Litestar(route_handlers=[*ops_handlers(checks)])
