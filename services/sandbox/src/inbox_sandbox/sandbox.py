"""The simulated Meta: what happens after a send, and the customer simulator's operations."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from inbox_sandbox import files
from inbox_sandbox.delivery import WebhookPoster
from inbox_sandbox.domain import graph_errors, ids, pricing, sends, signing, simulator, templating, webhooks
from inbox_sandbox.settings import SandboxSettings
from inbox_sandbox.state import Outbound, SandboxState

# Free-form sends only reach a customer inside the window; these kinds do not count as customer replies.
_NOT_CUSTOMER_MESSAGES = frozenset({"system"})


class RawIn(BaseModel):
    """A body posted as-is to the webhook URL (``POST /sandbox/simulate/raw``)."""

    # A string is sent byte for byte; a JSON value is serialised as Meta serialises.
    body: str | dict[str, Any] | list[Any]
    # valid: signed with the app secret; wrong: signed with another secret; none: no header;
    # custom: the header value given in ``header``.
    signature: str = Field(default="valid", pattern="^(valid|wrong|none|custom)$")
    header: str | None = None
    content_type: str = "application/json"


class TemplateStatusIn(BaseModel):
    """A ``message_template_status_update`` webhook, and the template's status changed to match."""

    waba_id: str | None = None  # default: the first number's business account
    name: str
    language: str = "en_US"
    event: str = "APPROVED"  # APPROVED, REJECTED, PAUSED, DISABLED, PENDING_DELETION, ...
    reason: str = "NONE"
    rejection_info: dict[str, str] | None = None


@dataclass(frozen=True)
class StatusPlan:
    business: webhooks.Business
    outbound: Outbound
    recipient: sends.Recipient
    billing: pricing.Billing
    conversation_id: str
    conversation_expires: int
    failure: tuple[int, str | None] | None
    biz_opaque_callback_data: str | None


class SimulationRejected(ValueError):
    """The simulator request names something that does not exist (answered 400)."""


class Sandbox:
    def __init__(self, settings: SandboxSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.state = SandboxState(settings, rng)
        self.poster = WebhookPoster(self.state, settings.meta_app_secret.get_secret_value(),
                                    settings.webhook_timeout_s)
        self._conversations: dict[tuple[str, str, str], tuple[str, int]] = {}

    @property
    def rng(self) -> random.Random:
        return self.state.rng

    def reset(self) -> None:
        self.state.reset()
        self._conversations.clear()

    def base_url(self, request_base: str) -> str:
        return (self.settings.public_url or request_base).rstrip("/")

    # ------------------------------------------------------------------------------------ sends

    def conversation(self, phone_number_id: str, customer_key: str, category: str, now: float) -> tuple[str, int]:
        """Meta's conversation object: one id per (number, customer, category) for 24 hours."""
        key = (phone_number_id, customer_key, category)
        current = self._conversations.get(key)
        if current is None or current[1] <= now:
            current = (ids.new_conversation_id(self.rng), int(now) + pricing.WINDOW_S)
            self._conversations[key] = current
        return current

    def schedule_statuses(self, plan: StatusPlan) -> None:
        self.poster.spawn(self._run_statuses(plan))

    async def _run_statuses(self, plan: StatusPlan) -> None:
        sent_delay, delivered_delay, read_delay = (d / 1000 for d in self.state.config.status_delays_ms)
        customer = self.state.customer(plan.business.phone_number_id, wa_id=plan.recipient.wa_id,
                                       user_id=plan.recipient.user_id)
        profile = customer.profile if customer is not None else None

        async def post(status: webhooks.StatusName, errors: tuple[dict[str, Any], ...] = ()) -> bool:
            info = webhooks.StatusInfo(
                wamid=plan.outbound.wamid, status=status, timestamp=int(time.time()), recipient=plan.recipient,
                billing=plan.billing, conversation_id=plan.conversation_id,
                conversation_expires=plan.conversation_expires, errors=errors,
                biz_opaque_callback_data=plan.biz_opaque_callback_data, profile=profile)
            plan.outbound.statuses.append(status)
            attempt = await self.poster.deliver("status", webhooks.status_webhook(plan.business, info), retry=True,
                                                wamid=plan.outbound.wamid, status=status)
            return attempt.status_code == 200

        await asyncio.sleep(sent_delay)
        if plan.failure is not None:
            code, details = plan.failure
            plan.outbound.error_code = code
            await post("failed", (graph_errors.status_error(code, details),))
            return
        await post("sent")
        await asyncio.sleep(delivered_delay)
        await post("delivered")
        if self.state.config.auto_read:
            await asyncio.sleep(read_delay)
            await post("read")

    # -------------------------------------------------------------------------------- simulator

    async def simulate(self, spec: simulator.SimulateIn, request_base: str) -> dict[str, Any]:
        """Sends one customer message as Meta would: a signed messages webhook to the webhook URL."""
        state = self.state
        first = state.first_number()
        pnid = spec.phone_number_id or (first.phone_number_id if first is not None else "")
        business = state.business(pnid)
        if business is None:
            raise SimulationRejected(f"unknown phone_number_id {pnid!r}; register it with POST /sandbox/numbers")
        profile = simulator.simulator_profile(spec, self.rng)
        now = time.time()
        timestamp = spec.timestamp if spec.timestamp is not None else int(now)
        wamid = spec.wamid or ids.new_wamid(profile.wa_id or "0", inbound=True, rng=self.rng)
        media = self._simulated_media(spec, business, request_base, now) if spec.type in sends.MEDIA_TYPES else None
        built = simulator.build_inbound(spec, business, profile, wamid, timestamp, media)
        payload = webhooks.inbound_webhook(business, built.profile, built.message)
        if spec.type not in _NOT_CUSTOMER_MESSAGES:
            state.note_inbound(business.phone_number_id, profile, timestamp)
        attempt = await self.poster.deliver("message", payload, retry=False, wamid=wamid)
        state.inbound.append({
            "wamid": wamid, "phone_number_id": business.phone_number_id, "from": profile.wa_id or profile.user_id,
            "name": profile.name, "type": spec.type, "text": _summary(built.message), "at": now,
            "status_code": attempt.status_code, "read": False, "typing_at": None, "typing_count": 0,
        })
        result: dict[str, Any] = {"wamid": wamid, "status_code": attempt.status_code, "response": attempt.response,
                                  "error": attempt.error, "payload": payload}
        if media is not None:
            result["media_id"] = media.id
        return result

    def _simulated_media(self, spec: simulator.SimulateIn, business: webhooks.Business, request_base: str,
                         now: float) -> simulator.MediaRef:
        seed = f"{business.phone_number_id}:{now}:{self.rng.random()}".encode()
        data, mime, filename = files.sample_file(spec.type, seed, spec.caption)
        if spec.content_base64 is not None:
            try:
                data = base64.b64decode(spec.content_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise simulator.SimulationError("content_base64 is not base64") from exc
        mime = spec.mime_type or mime
        filename = spec.filename or filename
        stored = self.state.store_media(business.phone_number_id, data, mime, filename, "simulator")
        return simulator.MediaRef(stored.id, mime, signing.sha256_b64(data),
                               self.state.media_url(self.base_url(request_base), stored.id, now), filename)

    async def simulate_raw(self, raw: RawIn) -> dict[str, Any]:
        body = raw.body.encode() if isinstance(raw.body, str) else signing.meta_json(raw.body)
        secret = self.settings.meta_app_secret.get_secret_value()
        header: str | None
        if raw.signature == "valid":
            header = signing.signature(secret, body)
        elif raw.signature == "wrong":
            header = signing.signature(secret + "-but-not-this-one", body)
        elif raw.signature == "custom":
            header = raw.header or ""
        else:
            header = None
        attempt = await self.poster.post_once(body, header, content_type=raw.content_type)
        self.poster.log_delivery("raw", body, attempt, 1, None)
        return {"status_code": attempt.status_code, "response": attempt.response, "error": attempt.error,
                "signature": header}

    async def template_status(self, spec: TemplateStatusIn) -> dict[str, Any]:
        first = self.state.first_number()
        waba_id = spec.waba_id or (first.waba_id if first else "")
        templates = self.state.templates.get(waba_id)
        if templates is None:
            raise SimulationRejected(f"unknown waba_id {waba_id!r}")
        template = templating.find_template(templates, spec.name, spec.language)
        if template is None:
            raise SimulationRejected(f"no template {spec.name!r} in {spec.language!r}")
        if spec.event in {"APPROVED", "REJECTED", "PAUSED", "DISABLED", "PENDING", "IN_APPEAL"}:
            template["status"] = spec.event
        payload = webhooks.template_status_webhook(waba_id, template, spec.event, spec.reason, int(time.time()),
                                                 spec.rejection_info)
        attempt = await self.poster.deliver("template_status", payload, retry=False)
        return {"status_code": attempt.status_code, "response": attempt.response, "error": attempt.error,
                "payload": payload}


def _summary(message: dict[str, Any]) -> str:
    """A line of what a message says, for the page."""
    kind = message.get("type", "")
    obj = message.get(kind)
    if kind == "text" and isinstance(obj, dict):
        return str(obj.get("body", ""))
    if isinstance(obj, dict):
        for key in ("caption", "body", "text", "emoji", "title", "name", "filename"):
            if obj.get(key):
                return f"[{kind}] {obj[key]}"
        if kind == "interactive":
            reply = obj.get(str(obj.get("type")), {})
            return f"[{obj.get('type')}] {reply.get('title') or reply.get('body', '')}"
    return f"[{kind}]"
