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
