"""An async client for the part of Meta's Graph API ingest uses, on httpx (why not pywa: see the README).

One client serves every number: the access token is given per call (as a ``SecretStr``) and only ever
put in the ``Authorization`` header, never in a URL, a log line or an exception message. Every failure
is a :class:`GraphError` carrying the HTTP status (None for a network error), Meta's error object and
whether it is worth retrying (domain.sending.classify).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import httpx
from pydantic import SecretStr

from inbox_core.events import utcnow
from inbox_core.events.whatsapp import MetaError
from inbox_ingest.domain.sending import Retry, classify, meta_error_fields

log = logging.getLogger("inbox.ingest.graph")


class GraphError(Exception):
    """A Graph API call that failed: ``status`` None means it never got an HTTP answer."""

    def __init__(self, status: int | None, error: MetaError, retry_after_s: float | None = None) -> None:
        self.status = status
        self.error = error
        self.retry_after_s = retry_after_s
        super().__init__(f"Graph API {status if status is not None else 'network error'}: "
                         f"code={error.code} {error.message or error.title or ''}".strip())

    @property
    def retry(self) -> Retry:
        return classify(self.status, self.error.code)

    @property
    def retryable(self) -> bool:
        return self.retry == "retry"


MediaContent = Callable[[], AsyncIterator[bytes]]


class Download:
    """An answer being downloaded: ``content_type``, ``length`` (Content-Length, if announced), ``chunks()``."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.content_type: str | None = response.headers.get("content-type")
        length = response.headers.get("content-length", "")
        self.length: int | None = int(length) if length.isdigit() else None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.TransportError as exc:
            raise _network_error(exc) from None


def _multipart_envelope(boundary: str, mime_type: str, filename: str) -> tuple[bytes, bytes]:
    """What goes before and after the file in Meta's upload form: ``messaging_product``, ``type``, ``file``."""
    quoted = filename.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")
    mime_type = mime_type.replace("\r", "").replace("\n", "")

    def field(name: str, value: str) -> str:
        return f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'

    head = (field("messaging_product", "whatsapp") + field("type", mime_type)
            + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            f"Content-Type: {mime_type}\r\n\r\n")
    return head.encode("utf-8"), f"\r\n--{boundary}--\r\n".encode()


class GraphClient:
    """``base_url`` is e.g. ``https://graph.facebook.com/v24.0`` or the sandbox's ``.../graph/v24.0``."""

    def __init__(self, base_url: str, timeout_s: float = 20.0, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=True,
            headers={"User-Agent": "inbox-ingest"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # --- the calls ------------------------------------------------------------------------------

    async def send_message(self, phone_number_id: str, token: SecretStr, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /{phone_number_id}/messages``: a send or a mark-as-read."""
        return await self._json("POST", self._url(f"{phone_number_id}/messages"), token, json=dict(body))

    async def upload_media(self, phone_number_id: str, token: SecretStr, content: MediaContent, size: int,
                           mime_type: str, filename: str) -> str:
        """``POST /{phone_number_id}/media`` (multipart) -> Meta's media id. ``content()`` gives the file's
        ``size`` bytes as a stream (called once per try): the body is sent as it is read, never held whole."""
        boundary = secrets.token_hex(16)
        head, tail = _multipart_envelope(boundary, mime_type, filename)

        async def body() -> AsyncIterator[bytes]:
            yield head
            sent = 0
            async for chunk in content():
                sent += len(chunk)
                yield chunk
            if sent != size:
                raise GraphError(None, MetaError(title="stored file changed size",
                                                 message=f"read {sent} bytes of {size}"))
            yield tail

        answer = await self._json(
            "POST", self._url(f"{phone_number_id}/media"), token, content=body(),
            extra_headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                           "Content-Length": str(len(head) + size + len(tail))},
        )
        media_id = answer.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphError(200, MetaError(title="upload answer has no media id", message="no media id"))
        return media_id

    async def media_info(self, media_id: str, token: SecretStr, phone_number_id: str | None = None) -> dict[str, Any]:
        """``GET /{media_id}`` -> ``{url, mime_type, sha256, file_size, id}``; the URL lives 5 minutes."""
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        return await self._json("GET", self._url(media_id), token, params=params)

    @contextlib.asynccontextmanager
    async def download(self, url: str, token: SecretStr) -> AsyncIterator[Download]:
        """``GET <url>`` with the bearer token (Meta refuses it without), as a stream: the answer's type and
        announced size at once, its bytes from ``Download.chunks()`` as they arrive."""
        target = urljoin(self.base_url + "/", url) if url.startswith("/") else url
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        try:
            async with self._http.stream("GET", target, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_of(response)
                yield Download(response)
        except httpx.TransportError as exc:
            raise _network_error(exc) from None

    async def templates_page(self, waba_id: str, token: SecretStr, *, after: str | None = None,
                             next_url: str | None = None, limit: int = 100) -> dict[str, Any]:
        """One page of ``GET /{waba_id}/message_templates``: by cursor, else by Meta's ``next`` URL."""
        if after or not next_url:
            params: dict[str, Any] = {"limit": limit}
            if after:
                params["after"] = after
            return await self._json("GET", self._url(f"{waba_id}/message_templates"), token, params=params)
        return await self._json("GET", next_url, token)

    async def phone_numbers_of(self, waba_id: str, token: SecretStr, max_pages: int = 20) -> set[str]:
        """The phone number ids of a business account, as the token sees it (``GET /{waba_id}/phone_numbers``,
        every page): Meta answers only a token with access to that account, so this is the proof of ownership."""
        found: set[str] = set()
        after: str | None = None
        for _ in range(max_pages):
            params: dict[str, Any] = {"fields": "id", "limit": 100}
            if after:
                params["after"] = after
            page = await self._json("GET", self._url(f"{waba_id}/phone_numbers"), token, params=params)
            found |= {str(n["id"]) for n in page.get("data") or [] if isinstance(n, dict) and n.get("id")}
            paging = page.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after") if paging.get("next") else None
            if not after:
                break
        return found

    # --- plumbing -------------------------------------------------------------------------------

    async def _json(self, method: str, url: str, token: SecretStr, *, extra_headers: Mapping[str, str] | None = None,
                    **kwargs: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token.get_secret_value()}", **(extra_headers or {})}
        try:
            response = await self._http.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise _network_error(exc) from None
        if response.status_code >= 400:
            raise _error_of(response)
        try:
            body = response.json()
        except ValueError:
            raise GraphError(response.status_code, MetaError(
                title="answer is not JSON", message="answer is not JSON")) from None
        if not isinstance(body, dict):
            raise GraphError(response.status_code, MetaError(title="answer is not an object",
                                                             message="answer is not an object"))
        return body


def _network_error(exc: httpx.TransportError) -> GraphError:
    # The exception's text may hold the URL but never the token (it only travels in a header).
    return GraphError(None, MetaError(title="network error", message=f"{type(exc).__name__}: {exc}"[:300]))


def _error_of(response: httpx.Response) -> GraphError:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    fields = meta_error_fields(body, response.status_code)
    return GraphError(response.status_code, MetaError.model_validate(fields),
                      _retry_after(response.headers.get("retry-after")))


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())
