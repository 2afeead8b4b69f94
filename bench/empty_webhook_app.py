"""The HTTP ceiling for bench/webhook_ingest.py: the same server (uvicorn + Litestar) with an empty
handler that only reads the body."""

from typing import Any

from litestar import Litestar, Request, post


@post("/webhooks/whatsapp", status_code=200)
async def receive(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"received": len(await request.body())}


app = Litestar(route_handlers=[receive], openapi_config=None)
