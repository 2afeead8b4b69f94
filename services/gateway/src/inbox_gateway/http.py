"""The gateway service's HTTP application: the three-column HTTP API, agents and auth, and the live stream.

Every ``/api`` route but login and logout needs a session (Bearer token or cookie), provided to the
handlers as ``principal``; ``gw`` is the process's :class:`~inbox_gateway.gateway.Gateway`. The OpenAPI
document is served at ``/schema`` (``/schema/openapi.json``, ``/schema/swagger``, ``/schema/redoc``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.static_files import create_static_files_router
from pymongo.errors import PyMongoError

from inbox_core.http import EXCEPTION_HANDLERS, error_response
from inbox_core.mongo import database_unavailable
from inbox_core.ops import ReadyCheck, http_metrics, http_tracing, ops_handlers
from inbox_gateway.accounts import Principal
from inbox_gateway.api import admin, files, inbox, live, panel, session
from inbox_gateway.gateway import Gateway

log = logging.getLogger("inbox.gateway")

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]

API_HANDLERS: list[Any] = [
    session.me,
    inbox.list_numbers, inbox.list_conversations, inbox.get_conversation, inbox.get_timeline, inbox.send_message,
    inbox.send_template, inbox.add_note, inbox.assign, inbox.mark_read, inbox.set_composing, inbox.list_templates,
    inbox.list_library, inbox.add_library_item, inbox.remove_library_item,
    files.upload, files.get_media,
    panel.get_panel, panel.get_customer, panel.update_customer, panel.create_order, panel.get_order,
    panel.change_stage, panel.list_agents,
    admin.connect_number, admin.add_agent,
    live.stream,
]


def openapi_config(cookie_name: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Team WhatsApp inbox: gateway API",
        version="1.0.0",
        description="The three-column API (see API.md). Errors are "
                    '`{"error": {"code", "message", "details"}}`; times are RFC 3339 UTC.',
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(path="/swagger"), RedocRenderPlugin(path="/redoc")],
        create_examples=False,
        use_handler_docstrings=False,
        components=Components(security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                                     description="The token from POST /api/auth/login"),
            "cookie": SecurityScheme(type="apiKey", name=cookie_name, security_scheme_in="cookie",
                                     description="The session cookie set by POST /api/auth/login"),
        }),
        tags=[Tag(name=n) for n in ("auth", "numbers", "conversations", "templates", "library", "media",
                                    "customers", "orders", "team", "admin", "stream")],
    )


def _database_error(request: Request[Any, Any, Any], exc: PyMongoError) -> Response[dict[str, Any]]:
    if not database_unavailable(exc):
        return EXCEPTION_HANDLERS[Exception](request, exc)  # type: ignore[no-any-return]
    log.warning("gateway database unavailable: %r", exc)
    return error_response(503, "unavailable", "the gateway's database is unavailable; retry shortly",
                          {"service": "gateway"})


REPO_WEB_DIST = Path(__file__).resolve().parents[4] / "web" / "dist"


def web_ui(web_dir: Path | None) -> list[Any]:
    """The web UI at ``/``: hashed assets cached for good, index.html always revalidated."""
    directory = web_dir or REPO_WEB_DIST
    if not (directory / "index.html").is_file():
        @get("/", media_type=MediaType.TEXT, include_in_schema=False, sync_to_thread=False)
        def not_built() -> str:
            return "The web UI is not built: run `make web` (the API is at /api, its reference at /schema)."

        return [not_built]
    return [
        create_static_files_router(path="/assets", directories=[directory / "assets"], include_in_schema=False,
                                   cache_control=CacheControlHeader(max_age=31536000, public=True),
                                   name="web-assets"),
        create_static_files_router(path="/", directories=[directory], html_mode=True, include_in_schema=False,
                                   cache_control=CacheControlHeader(no_cache=True), name="web"),
    ]


# The largest body of an API call but an upload (413 above it, in the API's error shape).
MAX_JSON_BODY_BYTES = 256 * 1024


def create_app(gateway: Gateway, checks: Mapping[str, ReadyCheck] | None = None) -> Litestar:
    async def provide_gateway() -> Gateway:
        return gateway

    async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        return await gateway.auth.principal(request)

    api = Router(path="/", route_handlers=API_HANDLERS, security=SECURITY,
                 dependencies={"principal": Provide(provide_principal)})
    return Litestar(
        route_handlers=[*ops_handlers(checks or {"database": gateway.ready}), session.login, session.logout, api,
                        *web_ui(gateway.settings.web_dir)],
        dependencies={"gw": Provide(provide_gateway)},
        exception_handlers={**EXCEPTION_HANDLERS, PyMongoError: _database_error},
        # JSON bodies are small (the largest is a few notes' worth of text); uploads set their own limit.
        request_max_body_size=MAX_JSON_BODY_BYTES,
        # A server span per request continuing the caller's trace (the gRPC calls it makes are its children).
        middleware=[http_tracing(), http_metrics("gateway")],
        openapi_config=openapi_config(gateway.settings.cookie_name),
        on_startup=[gateway.start],
        on_shutdown=[gateway.stop],
    )
