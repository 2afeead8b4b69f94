"""The ingest service's HTTP application: the Meta edge: WhatsApp webhooks in, Graph API sends out, media."""

from collections.abc import Mapping

from inbox_core.ops import ReadyCheck, ops_handlers
from litestar import Litestar


def create_app(checks: Mapping[str, ReadyCheck]) -> Litestar:
    return Litestar(route_handlers=[*ops_handlers(checks)])
