"""The entrypoint every service shares: ``python -m inbox_<name> [api|worker|all]``.

``api`` serves requests (gRPC or HTTP), ``worker`` runs the Kafka consumers, ``all`` runs both in one
process for development. Kubernetes runs ``api`` and ``worker`` as separate Deployments of one image,
so readers and consumers scale independently.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from inbox_core.logging import configure_logging
from inbox_core.runtime import Component, run
from inbox_core.settings import InboxSettings, is_placeholder
from inbox_core.telemetry import setup_telemetry

Builder = Callable[[str], Awaitable[list[Component]]]


class ServiceSettings(BaseSettings):
    """Base of a service's own settings; subclasses set ``env_prefix`` to ``<SERVICE>_`` and name their
    secrets in ``secret_fields``: none may be a placeholder unless ``INBOX_ALLOW_DEV_SECRETS`` is set."""

    secret_fields: ClassVar[tuple[str, ...]] = ()

    inbox: InboxSettings = Field(default_factory=InboxSettings)

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Self:
        if self.inbox.allow_dev_secrets:
            return self
        prefix = str(self.model_config.get("env_prefix", ""))
        for name in self.secret_fields:
            value = getattr(self, name)
            if value is not None and is_placeholder(value.get_secret_value()):
                # The variable's name, never its value.
                raise ValueError(f"{prefix}{name.upper()} is a placeholder or development secret: set a real "
                                 "one (INBOX_ALLOW_DEV_SECRETS=true allows it, in development only)")
        return self


def entrypoint(service: str, build: Builder, roles: Sequence[str] = ("api", "worker", "all"),
               argv: Sequence[str] | None = None, log_level: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m inbox_{service}")
    parser.add_argument("role", nargs="?", default="all", choices=list(roles))
    args = parser.parse_args(argv)
    configure_logging(service, log_level or InboxSettings().log_level)
    setup_telemetry(service)

    async def main() -> None:
        components = await build(args.role)
        await run(components)

    asyncio.run(main())
