"""The sandbox service's HTTP application.

A stand-in for Meta's Graph API and a customer simulator (dev and tests only).
"""

from collections.abc import Mapping

from inbox_core.ops import ReadyCheck, ops_handlers
from litestar import Litestar


def create_app(checks: Mapping[str, ReadyCheck]) -> Litestar:
    return Litestar(route_handlers=[*ops_handlers(checks)])
