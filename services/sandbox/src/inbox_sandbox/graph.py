"""The Graph API subset ingest uses, under ``/graph/{version}/`` (point ingest's base URL here).

Request and answer shapes are Meta's (docs/meta-cloud-api.md sections 5-9), errors included:
``{"error": {"message", "type", "code", "error_data": {"messaging_product", "details"}, "fbtrace_id"}}``.
Every endpoint needs ``Authorization: Bearer <token>`` (or ``?access_token=``): the default token
(``SANDBOX_ACCESS_TOKEN``) or one registered for the number concerned.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast
from urllib.parse import urlencode

from litestar import Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from inbox_sandbox.domain import graph_errors, ids, pagination, pricing, sends, signing, templating
from inbox_sandbox.sandbox import Sandbox, StatusPlan
from inbox_sandbox.state import FaultIn, Outbound

AnyRequest = Request[Any, Any, Any]

# Meta's accepted upload types and their size limits (Meta page business-phone-numbers/media).
_MB = 1024 * 1024
_UPLOAD_LIMITS: dict[str, int] = {
    "image/jpeg": 5 * _MB, "image/png": 5 * _MB, "image/webp": 500 * 1024,
    "video/mp4": 16 * _MB, "video/3gpp": 16 * _MB,
    "audio/aac": 16 * _MB, "audio/amr": 16 * _MB, "audio/mpeg": 16 * _MB, "audio/mp4": 16 * _MB,
    "audio/ogg": 16 * _MB,
    "text/plain": 100 * _MB, "application/pdf": 100 * _MB, "application/msword": 100 * _MB,
    "application/vnd.ms-excel": 100 * _MB, "application/vnd.ms-powerpoint": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": 100 * _MB,
}


def sandbox_of(request: AnyRequest) -> Sandbox:
    return cast(Sandbox, request.app.state.sandbox)


def record_of(request: AnyRequest) -> dict[str, Any] | None:
    """The request log entry the recorder opened for this request (see http.py)."""
    return cast(dict[str, Any] | None, cast(dict[str, Any], request.scope).get("sandbox_record"))


def error_response(sandbox: Sandbox, error: graph_errors.GraphError) -> Response[Any]:
    headers: dict[str, str] = {}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{error.message}"'
    return Response(error.body(ids.new_fbtrace_id(sandbox.rng)), status_code=error.http_status, headers=headers)


def _token(request: AnyRequest) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    return request.query_params.get("access_token")


def _authorise(request: AnyRequest, sandbox: Sandbox, phone_number_ids: list[str]) -> None:
    token = _token(request)
    if token is None:
        raise graph_errors.oauth_error(missing=True)
    if not sandbox.state.token_ok(token, phone_number_ids):
        raise graph_errors.oauth_error(missing=False)


def _request_base(request: AnyRequest) -> str:
    return str(request.base_url).rstrip("/")


async def _apply_fault(sandbox: Sandbox, phone_number_id: str, endpoint: str) -> FaultIn | None:
    fault = sandbox.state.take_fault(phone_number_id, endpoint)
    if fault is not None and fault.delay_ms:
        await asyncio.sleep(fault.delay_ms / 1000)
    if fault is not None and fault.delivery == "response":
        raise graph_errors.whatsapp_error(fault.code, fault.details, http_status=fault.status, message=fault.message)
    return fault


# ---------------------------------------------------------------------------------- messages


@post("/graph/{version:str}/{node:str}/messages", status_code=200)
async def send_message(request: AnyRequest, version: FromPath[str], node: FromPath[str]) -> Response[Any]:
    sandbox = sandbox_of(request)
    try:
        return await _send_message(request, sandbox, node)
    except graph_errors.GraphError as error:
        return error_response(sandbox, error)


async def _send_message(request: AnyRequest, sandbox: Sandbox, node: str) -> Response[Any]:
    state = sandbox.state
    _authorise(request, sandbox, [node])
    business = state.business(node)
    if business is None:
        raise graph_errors.unknown_object(node, "post")
    fault = await _apply_fault(sandbox, node, "messages")
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise graph_errors.invalid_parameter("The request body is not valid JSON.") from None
    parsed = sends.parse_messages_request(body, state.templates.get(business.waba_id, []))
    if isinstance(parsed, sends.MarkRead):
        for item in state.inbound:
            if item["wamid"] == parsed.message_id and item["phone_number_id"] == node:
                item["read"] = True
                if parsed.typing_indicator:  # the customer sees "typing…" for up to 25 s
                    item["typing_at"] = time.time()
                    item["typing_count"] = int(item.get("typing_count") or 0) + 1
        return Response({"success": True}, status_code=200)
    send = parsed
    if send.recipient.wa_id and send.recipient.wa_id == business.display_phone_number:
        raise graph_errors.whatsapp_error(131021)
    now = time.time()
    customer = state.customer(node, wa_id=send.recipient.wa_id, user_id=send.recipient.user_id)
    in_window = pricing.window_open(customer.last_inbound if customer else None, now)
    category = str(send.template["category"]) if send.template is not None else None
    billing = pricing.billing_for(category, in_window)
    failure: tuple[int, str | None] | None = None
    if fault is not None:
        failure = (fault.code, fault.details)
    elif send.type != "template" and not in_window:
        failure = (131047, None)
    elif send.media_id is not None and send.media_id not in state.media:
        failure = (131053, f"Media id {send.media_id} was not found.")
    wamid = ids.new_wamid(send.recipient.wa_id or "0", inbound=False, rng=sandbox.rng)
    conversation_id, expires = sandbox.conversation(node, send.recipient.wa_id or send.recipient.input,
                                                    billing.category, now)
    outbound = Outbound(wamid=wamid, phone_number_id=node, to=send.recipient.input, type=send.type,
                        request=body, created_at=now, text=_visible_text(send))
    state.outbound[wamid] = outbound
    sandbox.schedule_statuses(StatusPlan(business, outbound, send.recipient, billing, conversation_id, expires,
                                         failure, send.biz_opaque_callback_data))
    return Response(sends.send_response(send, wamid), status_code=200)


def _visible_text(send: sends.Send) -> str:
    content = send.content
    if send.type == "text":
        return str(content.get("body", ""))
    if send.type == "template" and send.template is not None:
        components = content.get("components") or []
        return templating.render_template(send.template, [c for c in components if isinstance(c, dict)])
    if send.type == "reaction":
        return f"[reaction] {content.get('emoji') or '(removed)'}"
    if send.type in sends.MEDIA_TYPES:
        label = content.get("caption") or content.get("filename") or content.get("id") or content.get("link")
        return f"[{send.type}] {label}"
    return f"[{send.type}]"


# ------------------------------------------------------------------------------------- media


@post("/graph/{version:str}/{node:str}/media", status_code=200)
async def upload_media(request: AnyRequest, version: FromPath[str], node: FromPath[str]) -> Response[Any]:
    sandbox = sandbox_of(request)
    try:
        _authorise(request, sandbox, [node])
        if sandbox.state.business(node) is None:
            raise graph_errors.unknown_object(node, "post")
        await _apply_fault(sandbox, node, "media")
        form = await request.form()
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        record = record_of(request)
        if record is not None:
            record["form"] = fields
            if isinstance(upload, UploadFile):
                record["form"]["file"] = {"filename": upload.filename, "content_type": upload.content_type}
        if fields.get("messaging_product") != "whatsapp":
            raise graph_errors.whatsapp_error(100, "The parameter messaging_product is required and must be whatsapp.",
                                        message="(#100) The parameter messaging_product is required.")
        if not isinstance(upload, UploadFile):
            raise graph_errors.whatsapp_error(100, "The parameter file is required.",
                                        message="(#100) The parameter file is required.")
        data = await upload.read()
        mime = fields.get("type") or upload.content_type or "application/octet-stream"
        base = mime.split(";")[0].strip().lower()
        limit = _UPLOAD_LIMITS.get(base)
        if limit is None:
            raise graph_errors.whatsapp_error(131053, f"Param file must be a file with one of the following types: "
                                                f"{', '.join(sorted(_UPLOAD_LIMITS))}. Received file of type "
                                                f"'{base}'.")
        if len(data) > limit:
            raise graph_errors.whatsapp_error(131053, f"The file is {len(data)} bytes; {base} files may be at most "
                                                f"{limit} bytes.")
        if not data:
            raise graph_errors.whatsapp_error(131053, "The file is empty.")
        if record is not None:
            record["form"]["file"]["size"] = len(data)
        stored = sandbox.state.store_media(node, data, mime, upload.filename or None, "upload")
        return Response({"id": stored.id}, status_code=200)
    except graph_errors.GraphError as error:
        return error_response(sandbox, error)


@get("/graph/{version:str}/{node:str}")
async def get_node(request: AnyRequest, version: FromPath[str], node: FromPath[str]) -> Response[Any]:
    """A media id (its download URL), a phone number id or a business account id."""
    sandbox = sandbox_of(request)
    state = sandbox.state
    try:
        media = state.media.get(node)
        if media is not None:
            _authorise(request, sandbox, [media.phone_number_id])
            wanted = request.query_params.get("phone_number_id")
            if wanted is not None and wanted != media.phone_number_id:
                raise graph_errors.unknown_object(node, "get")
            url = state.media_url(sandbox.base_url(_request_base(request)), media.id, time.time())
            return Response({"messaging_product": "whatsapp", "url": url, "mime_type": media.mime_type,
                             "sha256": media.sha256_hex, "file_size": len(media.data), "id": media.id})
        number = state.numbers.get(node)
        if number is not None:
            _authorise(request, sandbox, [node])
            return Response(_phone_number_view(number.phone_number_id, number.display_phone_number,
                                               number.verified_name))
        if node in state.templates:
            _authorise(request, sandbox, state.numbers_of_waba(node))
            return Response({"id": node, "name": f"Sandbox business {node}", "currency": "USD",
                             "timezone_id": "1", "message_template_namespace": f"sandbox_{node}"})
        _authorise(request, sandbox, [])
        raise graph_errors.unknown_object(node, "get")
    except graph_errors.GraphError as error:
        return error_response(sandbox, error)


def _phone_number_view(phone_number_id: str, display: str, verified_name: str) -> dict[str, Any]:
    shown = (f"+1 {display[1:4]}-{display[4:7]}-{display[7:]}" if len(display) == 11 and display.startswith("1")
             else f"+{display}")
    return {"verified_name": verified_name, "code_verification_status": "VERIFIED", "display_phone_number": shown,
            "quality_rating": "GREEN", "platform_type": "CLOUD_API", "throughput": {"level": "STANDARD"},
            "id": phone_number_id}


@delete("/graph/{version:str}/{node:str}", status_code=200)
async def delete_media(request: AnyRequest, version: FromPath[str], node: FromPath[str]) -> Response[Any]:
    sandbox = sandbox_of(request)
    try:
        media = sandbox.state.media.get(node)
        _authorise(request, sandbox, [media.phone_number_id] if media else [])
        wanted = request.query_params.get("phone_number_id")
        if media is None or (wanted is not None and wanted != media.phone_number_id):
            raise graph_errors.unknown_object(node, "delete")
        del sandbox.state.media[node]
        return Response({"success": True}, status_code=200)
    except graph_errors.GraphError as error:
        return error_response(sandbox, error)


@get("/sandbox/media-download/")
async def download_media(request: AnyRequest) -> Response[Any]:
    """The URL ``GET /{media_id}`` hands out (Meta's lookaside URL): signed, expiring, and token-protected."""
    sandbox = sandbox_of(request)
    state = sandbox.state
    query = request.query_params
    media_id, expires, given = query.get("mid", ""), query.get("ext", ""), query.get("hash", "")
    media = state.media.get(media_id)
    try:
        _authorise(request, sandbox, [media.phone_number_id] if media else [])
    except graph_errors.GraphError as error:
        return error_response(sandbox, error)
    if (media is None or not expires.isdigit()
            or not signing.url_signature_valid(state.url_secret, media_id, int(expires), given, time.time())):
        # Meta answers an unknown or expired URL with 404; the client then asks for a new URL.
        return Response({"error": "not found or expired"}, status_code=404)
    headers = {}
    if media.filename:
        headers["Content-Disposition"] = f'attachment; filename="{media.filename}"'
    return Response(media.data, media_type=media.mime_type, headers=headers)


# --------------------------------------------------------------------------------- templates


@get("/graph/{version:str}/{node:str}/message_templates")
async def list_templates(request: AnyRequest, version: FromPath[str], node: FromPath[str]) -> Response[Any]:
    sandbox = sandbox_of(request)
    state = sandbox.state
    try:
        _authorise(request, sandbox, state.numbers_of_waba(node))
        templates = state.templates.get(node)
        if templates is None:
            raise graph_errors.unknown_object(node, "get")
        query = request.query_params
        limit_text = query.get("limit", "25")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            raise graph_errors.invalid_parameter("Param limit must be an integer between 1 and 1000.")
        selected = [t for t in templates if _template_matches(t, query)]
        items, paging, has_next, has_previous = pagination.page_templates(
            selected, int(limit_text), query.get("after"), query.get("before"))
        fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
        if fields:
            items = [{k: v for k, v in t.items() if k in fields or k == "id"} for t in items]
        base = f"{sandbox.base_url(_request_base(request))}/graph/{version}/{node}/message_templates"
        rest = {k: v for k, v in query.items() if k not in {"after", "before"}}
        if has_next:
            paging["next"] = f"{base}?{urlencode({**rest, 'after': paging['cursors']['after']})}"
        if has_previous:
            paging["previous"] = f"{base}?{urlencode({**rest, 'before': paging['cursors']['before']})}"
        return Response({"data": items, "paging": paging})
    except graph_errors.GraphError as error:
        return error_response(sandbox, error)


def _template_matches(template: dict[str, Any], query: Any) -> bool:
    name = query.get("name")
    if name and name.lower() not in str(template.get("name", "")).lower():
        return False
    for key in ("status", "category", "language"):
        wanted = query.get(key)
        if wanted and str(template.get(key, "")).upper() not in {w.strip().upper() for w in wanted.split(",")}:
            return False
    return True


@get("/graph/{version:str}/{node:str}/phone_numbers")
async def list_phone_numbers(request: AnyRequest, version: FromPath[str], node: FromPath[str]) -> Response[Any]:
    sandbox = sandbox_of(request)
    state = sandbox.state
    try:
        numbers = state.numbers_of_waba(node)
        _authorise(request, sandbox, numbers)
        if node not in state.templates:
            raise graph_errors.unknown_object(node, "get")
        data = [_phone_number_view(n, state.numbers[n].display_phone_number, state.numbers[n].verified_name)
                for n in numbers]
        cursors = ({"before": pagination.encode_cursor(numbers[0]), "after": pagination.encode_cursor(numbers[-1])}
                   if numbers else {})
        return Response({"data": data, "paging": {"cursors": cursors}})
    except graph_errors.GraphError as error:
        return error_response(sandbox, error)


GRAPH_HANDLERS = [send_message, upload_media, get_node, delete_media, download_media, list_templates,
                  list_phone_numbers]
