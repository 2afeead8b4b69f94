"""The control API under ``/sandbox/``: numbers, tokens, faults, templates, run-time settings, what was
received and posted, and the customer simulator."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field, ValidationError

from inbox_sandbox.domain import ids, simulator
from inbox_sandbox.graph import sandbox_of
from inbox_sandbox.sandbox import RawIn, SimulationRejected, TemplateStatusIn
from inbox_sandbox.settings import NumberConfig
from inbox_sandbox.state import FaultIn

AnyRequest = Request[Any, Any, Any]


class ConfigPatch(BaseModel):
    webhook_url: str | None = None
    status_delays_ms: tuple[int, int, int] | None = None
    auto_read: bool | None = None
    webhook_max_attempts: int | None = Field(default=None, ge=1)


class TemplateIn(BaseModel):
    """A template added to a business account's list (all of them when ``waba_id`` is left out)."""

    waba_id: str | None = None
    template: dict[str, Any]


def _bad_request(detail: Any) -> Response[Any]:
    return Response({"detail": detail}, status_code=400)


async def _json_body(request: AnyRequest) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


# ---------------------------------------------------------------------------------------- numbers


@get("/sandbox/numbers")
async def list_numbers(request: AnyRequest) -> dict[str, Any]:
    state = sandbox_of(request).state
    return {"data": [n.model_dump(exclude={"access_token"}) | {"tokens": len(state.tokens.get(n.phone_number_id, ()))}
                     for n in state.numbers.values()]}


@post("/sandbox/numbers", status_code=200)
async def add_number(request: AnyRequest, data: JSONBody[NumberConfig]) -> dict[str, Any]:
    """Registers (or updates) a number; its ``access_token``, if any, is accepted for it from now on."""
    sandbox_of(request).state.add_number(data)
    return {"success": True, "phone_number_id": data.phone_number_id}


# ----------------------------------------------------------------------------------------- faults


@get("/sandbox/faults")
async def list_faults(request: AnyRequest) -> dict[str, Any]:
    return {"data": sandbox_of(request).state.fault_views()}


@post("/sandbox/faults", status_code=200)
async def add_fault(request: AnyRequest, data: JSONBody[FaultIn]) -> dict[str, Any]:
    sandbox_of(request).state.add_fault(data)
    return {"success": True}


@delete("/sandbox/faults", status_code=200)
async def clear_faults(request: AnyRequest) -> dict[str, Any]:
    sandbox_of(request).state.faults.clear()
    return {"success": True}


# -------------------------------------------------------------------------------------- templates


@get("/sandbox/templates")
async def all_templates(request: AnyRequest) -> dict[str, Any]:
    return {"data": sandbox_of(request).state.templates}


@post("/sandbox/templates", status_code=200)
async def add_template(request: AnyRequest, data: JSONBody[TemplateIn]) -> Response[Any]:
    state = sandbox_of(request).state
    template = dict(data.template)
    missing = [k for k in ("name", "language", "category", "components") if k not in template]
    if missing:
        return _bad_request(f"template needs {', '.join(missing)}")
    template.setdefault("status", "APPROVED")
    template.setdefault("parameter_format", "POSITIONAL")
    template.setdefault("id", ids.new_numeric_id(state.rng))
    wabas = [data.waba_id] if data.waba_id else list(state.templates)
    for waba in wabas:
        if waba not in state.templates:
            return _bad_request(f"unknown waba_id {waba!r}")
    for waba in wabas:
        templates = state.templates[waba]
        templates[:] = [t for t in templates
                        if not (t["name"] == template["name"] and t["language"] == template["language"])]
        templates.append(dict(template))
    return Response({"success": True, "id": template["id"]})


# --------------------------------------------------------------------------------------- settings


@get("/sandbox/config")
async def get_config(request: AnyRequest) -> dict[str, Any]:
    return sandbox_of(request).state.config.model_dump()


@patch("/sandbox/config")
async def patch_config(request: AnyRequest, data: JSONBody[ConfigPatch]) -> dict[str, Any]:
    state = sandbox_of(request).state
    changes = data.model_dump(exclude_none=True)
    state.config = state.config.model_copy(update=changes)
    return state.config.model_dump()


@post("/sandbox/reset", status_code=200)
async def reset(request: AnyRequest) -> dict[str, Any]:
    """Back to the settings' numbers and templates; forgets customers, media, faults and history."""
    sandbox_of(request).reset()
    return {"success": True}


# ---------------------------------------------------------------------------------------- history


def _since(request: AnyRequest) -> int:
    value = request.query_params.get("since", "0")
    return int(value) if value.isdigit() else 0


@get("/sandbox/requests")
async def list_requests(request: AnyRequest) -> dict[str, Any]:
    """The Graph API requests received, oldest first; filter with ``method``, ``path`` (substring), ``since``."""
    query = request.query_params
    method, path, since = query.get("method"), query.get("path"), _since(request)
    data = [r for r in sandbox_of(request).state.requests
            if r["id"] > since and (not method or r["method"] == method.upper()) and (not path or path in r["path"])]
    return {"data": data}


@delete("/sandbox/requests", status_code=200)
async def clear_requests(request: AnyRequest) -> dict[str, Any]:
    sandbox_of(request).state.requests.clear()
    return {"success": True}


@get("/sandbox/webhooks")
async def list_webhooks(request: AnyRequest) -> dict[str, Any]:
    """The webhooks posted (with the receiver's answer), oldest first; filter with ``wamid``, ``since``."""
    wamid, since = request.query_params.get("wamid"), _since(request)
    data = [w for w in sandbox_of(request).state.webhooks
            if w["id"] > since and (not wamid or w.get("wamid") == wamid)]
    return {"data": data}


@delete("/sandbox/webhooks", status_code=200)
async def clear_webhooks(request: AnyRequest) -> dict[str, Any]:
    sandbox_of(request).state.webhooks.clear()
    return {"success": True}


@get("/sandbox/messages")
async def list_messages(request: AnyRequest) -> dict[str, Any]:
    """What the business sent through the Graph API, with the statuses posted so far."""
    state = sandbox_of(request).state
    return {"data": [m.view() for m in state.outbound.values()], "inbound": list(state.inbound)}


@get("/sandbox/media/{media_id:str}")
async def media_info(request: AnyRequest, media_id: FromPath[str]) -> Response[Any]:
    media = sandbox_of(request).state.media.get(media_id)
    if media is None:
        return Response({"detail": "unknown media id"}, status_code=404)
    return Response({"id": media.id, "phone_number_id": media.phone_number_id, "mime_type": media.mime_type,
                     "sha256": media.sha256_hex, "file_size": len(media.data), "filename": media.filename,
                     "origin": media.origin})


# -------------------------------------------------------------------------------------- simulator


async def run_simulation(request: AnyRequest, body: Any, kind: str | None) -> Response[Any]:
    sandbox = sandbox_of(request)
    if not isinstance(body, dict):
        return _bad_request("the body must be a JSON object")
    if kind is not None:
        body = {**body, "type": kind}
    try:
        spec = simulator.SimulateIn.model_validate(body)
        result = await sandbox.simulate(spec, str(request.base_url))
    except ValidationError as exc:
        return _bad_request(json.loads(exc.json(include_url=False)))
    except (simulator.SimulationError, SimulationRejected) as exc:
        return _bad_request(str(exc))
    return Response(result, status_code=200)


@post("/sandbox/simulate", status_code=200)
async def simulate(request: AnyRequest) -> Response[Any]:
    """Sends a customer message: ``{"type": "text", "wa_id", "name", "body", ...}`` (see simulator.SimulateIn)."""
    try:
        body = await _json_body(request)
    except ValueError:
        return _bad_request("the body is not JSON")
    return await run_simulation(request, body, None)


@post("/sandbox/simulate/raw", status_code=200)
async def simulate_raw(request: AnyRequest, data: JSONBody[RawIn]) -> dict[str, Any]:
    """Posts a body as-is, validly signed, wrongly signed or unsigned."""
    return await sandbox_of(request).simulate_raw(data)


@post("/sandbox/simulate/template_status", status_code=200)
async def simulate_template_status(request: AnyRequest, data: JSONBody[TemplateStatusIn]) -> Response[Any]:
    try:
        return Response(await sandbox_of(request).template_status(data))
    except SimulationRejected as exc:
        return _bad_request(str(exc))


@post("/sandbox/simulate/{kind:str}", status_code=200)
async def simulate_kind(request: AnyRequest, kind: FromPath[str]) -> Response[Any]:
    """Same as ``POST /sandbox/simulate`` with the type in the path; the body may be empty (all defaults)."""
    try:
        body = await _json_body(request)
    except ValueError:
        return _bad_request("the body is not JSON")
    return await run_simulation(request, body, kind)


CONTROL_HANDLERS = [list_numbers, add_number, list_faults, add_fault, clear_faults, all_templates, add_template,
                    get_config, patch_config, reset, list_requests, clear_requests, list_webhooks, clear_webhooks,
                    list_messages, media_info, simulate, simulate_raw, simulate_template_status, simulate_kind]
