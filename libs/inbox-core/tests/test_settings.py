"""Start-up refuses placeholder and development secrets unless development says so."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from inbox_core.service import ServiceSettings
from inbox_core.settings import InboxSettings


class ExampleSettings(ServiceSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("api_secret",)
    api_secret: SecretStr


@pytest.mark.parametrize("secret", ["CHANGE-ME", "CHANGE-ME-at-least-16-characters", "dev-only-jwt-secret-change-me",
                                    "test-only-jwt-secret-0123", "my-placeholder-value", "changeme123"])
def test_a_placeholder_secret_stops_the_service_naming_the_variable_never_the_value(secret: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ExampleSettings(api_secret=SecretStr(secret), inbox=InboxSettings(allow_dev_secrets=False))
    message = str(refused.value)
    assert "API_SECRET" in message and secret not in message


def test_development_may_allow_them_and_a_real_secret_passes() -> None:
    allowed = ExampleSettings(api_secret=SecretStr("dev-only-secret"), inbox=InboxSettings(allow_dev_secrets=True))
    assert allowed.api_secret.get_secret_value() == "dev-only-secret"
    real = ExampleSettings(api_secret=SecretStr("q7T1-9vX2k8pLm3n"), inbox=InboxSettings(allow_dev_secrets=False))
    assert real.api_secret.get_secret_value() == "q7T1-9vX2k8pLm3n"


def test_the_services_name_their_secrets() -> None:
    from inbox_gateway.settings import GatewaySettings
    from inbox_ingest.settings import IngestSettings

    with pytest.raises(ValidationError, match="GATEWAY_JWT_SECRET"):
        GatewaySettings(jwt_secret=SecretStr("dev-only-jwt-secret-change-me-0123456789abcdef"),
                        inbox=InboxSettings(allow_dev_secrets=False))
    with pytest.raises(ValidationError, match="INGEST_META_APP_SECRET"):
        IngestSettings(meta_app_secret=SecretStr("dev-only-app-secret"), meta_verify_token=SecretStr("a-real-one"),
                       inbox=InboxSettings(allow_dev_secrets=False))
