"""``GET /sandbox/``: a server-rendered page to act as a customer (no JavaScript, no build step).

The form posts to ``POST /sandbox/`` which sends the message through the simulator and shows the
page again with the outcome, the messages the business sent (with their statuses) and the webhooks.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from html import escape
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import UploadFile
from pydantic import ValidationError

from inbox_sandbox.domain import simulator
from inbox_sandbox.graph import sandbox_of
from inbox_sandbox.sandbox import Sandbox, SimulationRejected

AnyRequest = Request[Any, Any, Any]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1100px;color:#1c1e21}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
form{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:.6rem 1rem;background:#f0f2f5;padding:1rem;
border-radius:8px}
label{display:flex;flex-direction:column;font-size:.8rem;gap:.2rem}
input,select,textarea{font:inherit;padding:.3rem;border:1px solid #ccd0d5;border-radius:4px}
.wide{grid-column:1/-1}button{grid-column:1/-1;padding:.5rem;font-weight:600;background:#25d366;border:0;
border-radius:4px;cursor:pointer}
table{border-collapse:collapse;width:100%;font-size:.8rem}td,th{border-bottom:1px solid #ddd;padding:.3rem;
text-align:left;vertical-align:top}.ok{color:#137333}.bad{color:#c5221f}pre{white-space:pre-wrap;font-size:.75rem}
"""

_FIELDS: list[tuple[str, str, str]] = [
    ("body", "Text (text, button, order, edit, system)", "Hello! Is this still available?"),
    ("caption", "Caption (image, video, document)", ""),
    ("filename", "File name (document)", ""),
    ("message_id", "Target wamid (reaction, edit, revoke)", ""),
    ("emoji", "Emoji (reaction; empty removes)", "\U0001f44d"),
    ("context_message_id", "Reply to wamid (context)", ""),
    ("reply_id", "Reply id (button_reply, list_reply)", ""),
    ("title", "Reply title", ""),
    ("payload", "Button payload (button)", ""),
    ("latitude", "Latitude (location)", ""),
    ("longitude", "Longitude (location)", ""),
    ("new_wa_id", "New number (system)", ""),
    ("user_id", "Business-scoped user id", ""),
    ("username", "Username", ""),
    ("timestamp", "Timestamp (unix s, default now)", ""),
]


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%H:%M:%S")


TYPING_SHOWN_S = 25.0  # as WhatsApp: the indicator goes after 25 s, or with the reply


def _typing(item: dict[str, Any]) -> str:
    """"typing…" while a typing indicator the business sent is still showing, else when it last came."""
    at = item.get("typing_at")
    if not at:
        return ""
    if time.time() - float(at) < TYPING_SHOWN_S:
        return "<strong class='typing'>typing…</strong>"
    return f"last {_when(float(at))}"


def render(sandbox: Sandbox, outcome: dict[str, Any] | None = None, error: str | None = None) -> str:
    state = sandbox.state
    numbers = "".join(
        f'<option value="{escape(n.phone_number_id)}">{escape(n.verified_name)} +{escape(n.display_phone_number)}'
        f" ({escape(n.phone_number_id)})</option>" for n in state.numbers.values())
    kinds = "".join(f'<option value="{k}">{k}</option>' for k in simulator.INBOUND_KINDS)
    inputs = "".join(
        f'<label>{escape(label)}<input name="{name}" value="{escape(default)}"></label>'
        for name, label, default in _FIELDS)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>WhatsApp sandbox</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>WhatsApp sandbox: act as a customer</h1>",
        f"<p>Webhooks go to <code>{escape(state.config.webhook_url)}</code>. "
        "The JSON API is <code>POST /sandbox/simulate</code> (see the service README).</p>",
    ]
    if error:
        parts.append(f"<p class='bad'><strong>Not sent:</strong> {escape(error)}</p>")
    if outcome is not None:
        ok = outcome.get("status_code") == 200
        parts.append(
            f"<p class='{'ok' if ok else 'bad'}'><strong>Sent {escape(str(outcome.get('wamid')))}</strong>: "
            f"webhook answered {escape(str(outcome.get('status_code')))} {escape(str(outcome.get('error') or ''))}"
            f"</p><details><summary>Webhook body</summary><pre>"
            f"{escape(json.dumps(outcome.get('payload'), indent=2, ensure_ascii=False))}</pre></details>")
    parts.append(
        "<form method='post' action='/sandbox/' enctype='multipart/form-data'>"
        f"<label>Business number<select name='phone_number_id'>{numbers}</select></label>"
        f"<label>Message type<select name='type'>{kinds}</select></label>"
        "<label>Customer number (wa_id)<input name='wa_id' value='16505551234'></label>"
        "<label>Customer name<input name='name' value='Sheena Nelson'></label>"
        "<label>Username only (no number)<input type='checkbox' name='bsuid_only'></label>"
        "<label>File (media types; default a tiny generated one)<input type='file' name='file'></label>"
        f"{inputs}"
        "<label class='wide'>More fields (JSON merged into the request, e.g. {\"fields\": {...}})"
        "<textarea name='extra' rows='2'></textarea></label>"
        "<button type='submit'>Send as the customer</button></form>")
    parts.append("<h2>Customer messages</h2><table><tr><th>time</th><th>number</th><th>from</th><th>message</th>"
                 "<th>webhook</th><th>read</th><th>business typing</th><th>wamid</th></tr>")
    for item in reversed(list(state.inbound)[-30:]):
        parts.append(
            f"<tr><td>{_when(item['at'])}</td><td>{escape(item['phone_number_id'])}</td>"
            f"<td>{escape(str(item['from']))} {escape(item['name'])}</td><td>{escape(item['text'])}</td>"
            f"<td>{escape(str(item['status_code']))}</td><td>{'yes' if item['read'] else ''}</td>"
            f"<td>{_typing(item)}</td>"
            f"<td><code>{escape(item['wamid'])}</code></td></tr>")
    parts.append("</table><h2>Sent by the business</h2><table><tr><th>time</th><th>number</th><th>to</th>"
                 "<th>message</th><th>statuses</th><th>wamid</th></tr>")
    for message in reversed(list(state.outbound.values())[-30:]):
        statuses = ", ".join(message.statuses) + (f" ({message.error_code})" if message.error_code else "")
        parts.append(
            f"<tr><td>{_when(message.created_at)}</td><td>{escape(message.phone_number_id)}</td>"
            f"<td>{escape(message.to)}</td><td>{escape(message.text or '')}</td><td>{escape(statuses)}</td>"
            f"<td><code>{escape(message.wamid)}</code></td></tr>")
    parts.append("</table><h2>Webhooks posted</h2><table><tr><th>time</th><th>kind</th><th>answer</th>"
                 "<th>attempts</th><th>body</th></tr>")
    for hook in reversed(list(state.webhooks)[-30:]):
        parts.append(
            f"<tr><td>{_when(hook['at'])}</td><td>{escape(hook['kind'])} {escape(str(hook.get('status') or ''))}"
            f"</td><td>{escape(str(hook['status_code'] or hook['error']))}</td><td>{hook['attempts']}</td>"
            f"<td><details><summary>body</summary><pre>{escape(hook['body'])}</pre></details></td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)


@get("/sandbox/", media_type=MediaType.HTML)
async def page(request: AnyRequest) -> str:
    return render(sandbox_of(request))


@post("/sandbox/", media_type=MediaType.HTML, status_code=200)
async def page_send(request: AnyRequest) -> Response[str]:
    sandbox = sandbox_of(request)
    form = await request.form()
    spec: dict[str, Any] = {}
    for key, value in form.items():
        if isinstance(value, str) and value.strip() and key not in {"extra", "context_message_id", "file"}:
            spec[key] = value.strip()
    spec["bsuid_only"] = "bsuid_only" in form
    if spec.get("type") == "reaction" and not (form.get("emoji") or "").strip():
        spec["emoji"] = None
    context_id = form.get("context_message_id")
    if isinstance(context_id, str) and context_id.strip():
        spec["context"] = {"message_id": context_id.strip()}
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read()
        if data:
            spec["content_base64"] = base64.b64encode(data).decode()
            spec.setdefault("filename", upload.filename)
            if upload.content_type:
                spec["mime_type"] = upload.content_type
    try:
        extra = form.get("extra")
        if isinstance(extra, str) and extra.strip():
            more = json.loads(extra)
            if not isinstance(more, dict):
                raise ValueError("More fields must be a JSON object")
            spec.update(more)
        outcome = await sandbox.simulate(simulator.SimulateIn.model_validate(spec), str(request.base_url))
    except ValidationError as exc:
        return Response(render(sandbox, error=str(exc)), status_code=400, media_type=MediaType.HTML)
    except (ValueError, SimulationRejected) as exc:
        return Response(render(sandbox, error=str(exc)), status_code=400, media_type=MediaType.HTML)
    return Response(render(sandbox, outcome=outcome), media_type=MediaType.HTML)


UI_HANDLERS = [page, page_send]
