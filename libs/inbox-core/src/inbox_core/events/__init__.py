"""The event envelope every topic carries, and the registry of typed event payloads.

An event is JSON: ``{id, type, occurred_at, workspace_id, data}``; trace context travels in Kafka
headers, not in the body. ``type`` names the payload model (``data``) registered with
:func:`event_type`, so a consumer can turn ``data`` back into its model with :meth:`Event.payload`.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

PayloadT = TypeVar("PayloadT", bound=BaseModel)

_REGISTRY: dict[str, type[BaseModel]] = {}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class EventData(BaseModel):
    """Base of every event payload: unknown fields are kept, so an older consumer loses nothing."""

    model_config = ConfigDict(extra="allow")


def event_type(name: str) -> Callable[[type[PayloadT]], type[PayloadT]]:
    """Registers a payload model under its event type name (e.g. ``whatsapp.message.received``)."""

    def register(cls: type[PayloadT]) -> type[PayloadT]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"event type {name!r} is registered twice")
        _REGISTRY[name] = cls
        cls.EVENT_TYPE = name  # type: ignore[attr-defined]
        return cls

    return register


def registered_types() -> dict[str, type[BaseModel]]:
    return dict(_REGISTRY)


class Event(BaseModel):
    """The envelope. ``id`` is unique per fact and is what consumers deduplicate on."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(default_factory=new_id)
    type: str
    occurred_at: datetime = Field(default_factory=utcnow)
    workspace_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(
        cls,
        payload: BaseModel,
        *,
        workspace_id: str | None = None,
        id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Event:
        type_name = getattr(payload, "EVENT_TYPE", None)
        if not type_name:
            raise ValueError(f"{type(payload).__name__} is not a registered event type")
        return cls(
            id=id or new_id(),
            type=type_name,
            occurred_at=occurred_at or utcnow(),
            workspace_id=workspace_id,
            data=payload.model_dump(mode="json", exclude_none=False),
        )

    def payload(self, model: builtins.type[PayloadT] | None = None) -> PayloadT:
        """The typed payload; raises KeyError for an unknown type and ValidationError for bad data."""
        cls = model or _REGISTRY[self.type]
        return cls.model_validate(self.data)  # type: ignore[return-value]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Event:
        return cls.model_validate_json(raw)
