"""/docs works offline and under the service's CSP: Swagger UI from the installed package, started by an external script."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import segmenta
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.conftest import need

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def base(conformance_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("docs") / "ws"
    segmenta.Workspace.init(path, model=conformance_dir / "model.yaml").close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(service=Service(path)), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the service did not start"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def test_docs_reference_no_other_host_and_their_assets_are_served(base: str) -> None:
    page = httpx.get(f"{base}/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), "an inline script would be refused by the CSP"
    for ref in refs:
        asset = httpx.get(base + ref)
        assert asset.status_code == 200, ref
        assert asset.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "application/javascript",
            "text/css",
            "image/png",
        )
    assert "/openapi.json" in httpx.get(f"{base}/docs/init.js").text


@pytest.mark.browser
def test_docs_render_the_operations_with_no_network_and_no_csp_violation(base: str) -> None:
    need(Path(CHROMIUM).exists(), "Debian's chromium (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        need(False, "the playwright package (pip install -e '.[dev]')")
    outside: list[str] = []
    console: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            pg = browser.new_page()

            def route(r: Any) -> None:
                if r.request.url.startswith(base + "/"):
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            pg.route("**/*", route)
            pg.on("console", lambda m: console.append(m.text))
            pg.goto(f"{base}/docs")
            pg.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = pg.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert any("/api/auth/login" in t for t in paths), paths
    assert outside == []
    assert not [m for m in console if "Content Security Policy" in m], console
