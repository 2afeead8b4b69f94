"""Ingest's HTTP application: Meta's webhook (``GET/POST /webhooks/whatsapp``) and the ops endpoints.

POST: the signature is checked on the raw bytes before anything is parsed (401); a body that is not
a WhatsApp webhook is 400; over Meta's 3 MB maximum, 413; 200 only once every event is durably on
Kafka; 503 when Kafka or the database cannot take it, so Meta retries (for up to 7 days).
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.params import QueryParameter

from inbox_core.http_errors import EXCEPTION_HANDLERS, error_response
from inbox_core.ops import http_metrics, http_tracing
from inbox_ingest.domain.normalise import NotAWebhook, normalise_raw
from inbox_ingest.domain.signature import signature_valid
from inbox_ingest.intake import Intake
from inbox_ingest.settings import IngestSettings

log = logging.getLogger("inbox.ingest.http")


def create_app(settings: IngestSettings, intake: Intake | None) -> Litestar:
    """The webhook, Meta's only way in (the ops endpoints are on their own port: see __main__)."""
    app_secret = settings.meta_app_secret.get_secret_value().encode()
    verify_token = settings.meta_verify_token.get_secret_value().encode()

    @get("/webhooks/whatsapp", media_type=MediaType.TEXT, sync_to_thread=False)
    def verify(
        mode: Annotated[str, QueryParameter(name="hub.mode")] = "",
        token: Annotated[str, QueryParameter(name="hub.verify_token")] = "",
        challenge: Annotated[str, QueryParameter(name="hub.challenge")] = "",
    ) -> Response[str]:
        """Meta's verification handshake: the challenge back when the token matches, else 403."""
        if mode == "subscribe" and challenge and hmac.compare_digest(token.encode(), verify_token):
            return Response(challenge, status_code=200, media_type=MediaType.TEXT)
        return Response("verification failed", status_code=403, media_type=MediaType.TEXT)

    @post("/webhooks/whatsapp", status_code=200)
    async def receive(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        raw = await request.body()
        if not signature_valid(app_secret, raw, request.headers.get("x-hub-signature-256")):
            return error_response(401, "unauthenticated", "missing or wrong X-Hub-Signature-256")
        try:
            events = normalise_raw(raw)
        except NotAWebhook as exc:
            return error_response(400, "invalid_request", f"not a WhatsApp webhook: {exc}")
        if intake is None:
            return error_response(503, "unavailable", "webhook intake is not running in this process")
        result = await intake.accept(events)
        return Response({"received": len(events), "published": result.published,
                         "duplicates": result.duplicates, "unrouted": result.unrouted})

    return Litestar(
        route_handlers=[verify, receive],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[http_tracing(), http_metrics("ingest")],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
    )
