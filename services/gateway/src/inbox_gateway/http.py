"""The gateway service's HTTP application: the three-column HTTP API, agents and auth, and the live stream.

Every ``/api`` route but login and logout needs a session (Bearer token or cookie), provided to the
handlers as ``principal``; ``gateway`` is the process's :class:`~inbox_gateway.gateway.Gateway`. The OpenAPI
document is served at ``/schema`` (``/schema/openapi.json``, ``/schema/swagger``, ``/schema/redoc``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, Router, get

# Litestar's own Struct schema plugin, extended below (pinned by uv.lock; its tests would show a move).
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme, Tag
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.typing import FieldDefinition
from pymongo.errors import PyMongoError

from inbox_core.http_errors import EXCEPTION_HANDLERS, error_response
from inbox_core.mongo import database_unavailable
from inbox_core.ops import http_metrics, http_tracing
from inbox_gateway.accounts import Principal
from inbox_gateway.api import admin, files, inbox, live, members, panel, replies, session
from inbox_gateway.gateway import Gateway

log = logging.getLogger("inbox.gateway")

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]

# The UI's pages load only from this origin and may be framed by none (no clickjacking); a response that
# sets its own policy (media: a sandbox) keeps it. Inline styles: Preact sets style attributes.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = ((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin"))


def security_headers(app: ASGIApp) -> ASGIApp:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response that lacks them."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in SECURITY_HEADERS if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware

API_HANDLERS: list[Any] = [
    session.me,
    inbox.list_numbers, inbox.list_conversations, inbox.get_conversation, inbox.get_timeline, inbox.send_message,
    inbox.send_template, inbox.add_note, inbox.assign, inbox.set_status, inbox.mark_read, inbox.set_composing,
    inbox.set_viewing,
    inbox.list_templates,
    inbox.list_library, inbox.add_library_item, inbox.remove_library_item,
    replies.list_replies, replies.add_reply, replies.update_reply, replies.remove_reply, replies.render_reply,
    files.upload, files.get_media,
    panel.get_panel, panel.get_customer, panel.update_customer, panel.create_order, panel.get_order,
    panel.change_stage, panel.list_agents,
    admin.connect_number, admin.workspace_settings, admin.change_workspace,
    members.invite, members.list_invitations, members.revoke_invitation, members.remove_member,
    members.change_password,
    live.stream,
]


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's schema of a msgspec Struct, saying ``additionalProperties: false`` where the Struct forbids
    unknown fields: the document then states what the API enforces, and generated clients (and schemathesis)
    do not send what it refuses."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if not isinstance(info, msgspec.inspect.StructType):
            return schema
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        # Litestar leaves out the constraints of a list's strings (tags of 1 to 64 characters): add them.
        for field in info.fields:
            kind = field.type
            if isinstance(kind, msgspec.inspect.UnionType):
                kind = next((t for t in kind.types if isinstance(t, msgspec.inspect.ListType)), kind)
            if not (isinstance(kind, msgspec.inspect.ListType) and isinstance(kind.item_type, msgspec.inspect.StrType)):
                continue
            prop = (schema.properties or {}).get(field.encode_name)
            for candidate in [prop, *(getattr(prop, "one_of", None) or [])]:
                if isinstance(candidate, Schema) and isinstance(candidate.items, Schema):
                    candidate.items.min_length = kind.item_type.min_length
                    candidate.items.max_length = kind.item_type.max_length
                    candidate.items.pattern = kind.item_type.pattern
        return schema


def openapi_config(cookie_name: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Team WhatsApp inbox: gateway API",
        version="1.0.0",
        description="The three-column API (see docs/api.md). Errors are "
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
        tags=[Tag(name=n) for n in ("auth", "numbers", "conversations", "templates", "library", "replies", "media",
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


def create_app(gateway: Gateway) -> Litestar:
    """The public app (the ops endpoints are on their own port: see __main__)."""
    async def provide_gateway() -> Gateway:
        return gateway

    async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        return await gateway.auth.principal(request)

    api = Router(path="/", route_handlers=API_HANDLERS, security=SECURITY,
                 dependencies={"principal": Provide(provide_principal)})
    return Litestar(
        route_handlers=[session.login, session.logout,
                        members.preview_invitation, members.accept_invitation, api,
                        *web_ui(gateway.settings.web_dir)],
        dependencies={"gateway": Provide(provide_gateway)},
        exception_handlers={**EXCEPTION_HANDLERS, PyMongoError: _database_error},
        # JSON bodies are small (the largest is a few notes' worth of text); uploads set their own limit.
        request_max_body_size=MAX_JSON_BODY_BYTES,
        # A server span per request continuing the caller's trace (the gRPC calls it makes are its children).
        middleware=[security_headers, http_tracing(), http_metrics("gateway")],
        openapi_config=openapi_config(gateway.settings.cookie_name),
        plugins=[StrictStructSchemaPlugin()],
        on_startup=[gateway.start],
        on_shutdown=[gateway.stop],
    )
