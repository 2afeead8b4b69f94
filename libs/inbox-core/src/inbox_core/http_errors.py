"""HTTP error bodies for Litestar apps, as docs/api.md fixes them:
``{"error": {"code": "<machine_code>", "message": "<for a person>", "details": {...}}}``.

No endpoint answers 500 to bad input: Litestar's own client errors (bad JSON, body too large,
validation) are mapped to their codes, and anything unexpected is logged and answered 500 without
its text.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from pymongo.errors import PyMongoError

from inbox_core.errors import InboxError
from inbox_core.mongo import database_unavailable

log = logging.getLogger("inbox.http")

_CODES = {400: "invalid_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
          422: "validation_failed", 429: "rate_limited", 503: "unavailable"}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    return Response({"error": {"code": code, "message": message, "details": details or {}}},
                    status_code=status, headers=headers)


def _inbox_error(_: Request[Any, Any, Any], exc: InboxError) -> Response[dict[str, Any]]:
    return error_response(exc.http_status, exc.code, exc.message, exc.details)


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    details: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        details["errors"] = exc.extra
        status = 400
    return error_response(status, _CODES.get(status, "error"), str(exc.detail), details, exc.headers)


def _unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal", "Something went wrong on our side.")


def _database_error(request: Request[Any, Any, Any], exc: PyMongoError) -> Response[dict[str, Any]]:
    if not database_unavailable(exc):
        return _unexpected(request, exc)
    log.warning("database unavailable: %r", exc)
    return error_response(503, "unavailable", "The database is unavailable; retry shortly.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    InboxError: _inbox_error,
    HTTPException: _http_exception,
    PyMongoError: _database_error,
    Exception: _unexpected,
}
