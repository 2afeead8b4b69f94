"""The web UI is served at / from its build: index.html revalidated, hashed assets cached for good, and a
content security policy that lets no other site frame it."""

from pathlib import Path

from litestar import Litestar, Response, get
from litestar.testing import TestClient

from inbox_gateway.http import security_headers, web_ui


def test_built_ui_is_served_with_fitting_cache_headers(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Inbox</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log('inbox')")
    with TestClient(Litestar(route_handlers=web_ui(tmp_path))) as client:
        page = client.get("/")
        assert page.status_code == 200 and "<title>Inbox</title>" in page.text
        assert "no-cache" in page.headers["cache-control"]
        asset = client.get("/assets/index-abc123.js")
        assert asset.status_code == 200 and "max-age=31536000" in asset.headers["cache-control"]
        assert client.get("/assets/missing.js").status_code == 404


def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path) -> None:
    with TestClient(Litestar(route_handlers=web_ui(tmp_path / "nothing"))) as client:
        page = client.get("/")
        assert page.status_code == 200 and "make web" in page.text


def test_the_ui_may_be_framed_by_no_one_and_a_stricter_policy_is_kept(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Inbox</title>")

    @get("/sandboxed", sync_to_thread=False)
    def sandboxed() -> Response[str]:
        return Response("file", headers={"Content-Security-Policy": "default-src 'none'; sandbox"})

    app = Litestar(route_handlers=[*web_ui(tmp_path), sandboxed], middleware=[security_headers])
    with TestClient(app) as client:
        page = client.get("/")
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert client.get("/sandboxed").headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_the_openapi_document_states_what_the_bodies_enforce() -> None:
    """Unknown fields are refused and tags are 1 to 64 characters: the document says so (it did not, so
    generated clients sent what the API then refused)."""
    from gateway_testkit import gateway_settings

    from inbox_core.settings import InboxSettings
    from inbox_gateway.gateway import Gateway
    from inbox_gateway.http import create_app

    gateway = Gateway(gateway_settings(InboxSettings(mongo_url="mongodb://127.0.0.1:1/")), stream=False)
    schemas = create_app(gateway).openapi_schema.to_schema()["components"]["schemas"]
    for body in ("LoginBody", "AcceptBody", "CustomerPatch", "ConnectNumberBody", "InviteBody", "PasswordBody"):
        assert schemas[body]["additionalProperties"] is False, body
    assert "additionalProperties" not in schemas["Me"]  # answers may grow
    tags = next(s for s in schemas["CustomerPatch"]["properties"]["tags"]["oneOf"] if s.get("type") == "array")
    assert tags["items"] == {"type": "string", "minLength": 1, "maxLength": 64}
