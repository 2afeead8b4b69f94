"""Errors shared by every service, each with its machine code, gRPC status and HTTP status.

Domain code raises these; the gRPC bootstrap turns them into status codes with the machine code in
the details, and the gateway turns gRPC statuses back into docs/api.md's error bodies.
"""

from __future__ import annotations

from typing import Any, ClassVar

import grpc


class InboxError(Exception):
    code: ClassVar[str] = "invalid_request"
    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INVALID_ARGUMENT
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code  # type: ignore[misc]


class InvalidRequest(InboxError):
    pass


class ValidationFailed(InboxError):
    code = "validation_failed"
    http_status = 422


class NotFound(InboxError):
    code = "not_found"
    grpc_status = grpc.StatusCode.NOT_FOUND
    http_status = 404


class Forbidden(InboxError):
    code = "forbidden"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403


class Conflict(InboxError):
    code = "conflict"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409


class WindowClosed(Conflict):
    code = "window_closed"


class TooLarge(InboxError):
    code = "too_large"
    http_status = 413


class RateLimited(InboxError):
    code = "rate_limited"
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429


class Unavailable(InboxError):
    """A dependency is down; safe to retry."""

    code = "unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    http_status = 503


class TransientError(Exception):
    """Raised by consumers for a failure that will pass (a dependency down): retry, never dead-letter."""


# gRPC status -> (http status, machine code), for the gateway.
GRPC_TO_HTTP: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "forbidden"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "conflict"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict"),
    grpc.StatusCode.ABORTED: (409, "conflict"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limited"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "unavailable"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request"),
}
