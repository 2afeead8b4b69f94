"""The web UI is served at / from its build: index.html revalidated, hashed assets cached for good."""

from pathlib import Path

from litestar import Litestar
from litestar.testing import TestClient

from inbox_gateway.http import web_ui


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
