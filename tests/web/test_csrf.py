"""CSRF in a real Chromium: a page on another port of the same host (same-site, not same-origin) tries to
stop a live segment and replace a table with the operator's session cookie, and fails; the builder still works.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import PASSWORD, Template, template  # noqa: F401 - the fixture is used by name
from tests.conftest import need

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser

EVIL_PAGE = """<!doctype html><html><body>
<form id="f" method="POST" action="{base}/api/segments/Gold/stop" target="sink"><input name="x" value="1"></form>
<iframe name="sink" id="sink"></iframe>
<script>
async function attack() {{
  const tries = [
    fetch("{base}/api/segments/Gold/stop", {{method: "POST", credentials: "include", mode: "no-cors"}}),
    fetch("{base}/api/tables/account/load", {{method: "POST", credentials: "include", mode: "no-cors",
      body: (() => {{ const d = new FormData();
        d.append("file", new Blob(["accountid,name,industry,employees,revenue,country\\n9,Evil,Retail,1,1.0,UK\\n"]), "a.csv");
        return d; }})()}}),
  ];
  await Promise.allSettled(tries);
  const sink = document.getElementById("sink");
  sink.addEventListener("load", () => {{ document.title = "done"; }});
  document.getElementById("f").submit();
}}
attack();
</script></body></html>"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    ws = tmp_path_factory.mktemp("csrf") / "ws"
    shutil.copytree(template.path, ws)
    port = _free_port()
    log = ws.parent / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "segmenta", "--workspace", str(ws), "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield {"base": base, "admin": {"Authorization": f"Bearer {template.tokens['admin']}"}}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def evil(server: dict[str, Any]) -> Iterator[str]:
    page = EVIL_PAGE.format(base=server["base"]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(Path(CHROMIUM).exists(), "Debian's chromium (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        need(False, "the playwright package (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
        )
        yield b
        b.close()


def _sign_in(pg: Any, base: str) -> None:
    """Through the builder's own login form (a same-origin fetch the CSRF check lets through)."""
    pg.goto(base + "/")
    pg.fill("#login-username", "olga")
    pg.fill("#login-password", PASSWORD)
    pg.click("#login-form button[type=submit]")
    pg.wait_for_selector("#list-view:not([hidden])")


def _gold(server: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{server['base']}/api/segments/Gold", headers=server["admin"]).json()
    return found


def _accounts(server: dict[str, Any]) -> str:
    return httpx.get(f"{server['base']}/api/tables/account/rows", headers=server["admin"]).text


def test_a_same_site_page_cannot_use_the_operator_s_cookie(browser: Any, server: dict[str, Any], evil: str) -> None:
    context = browser.new_context()
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(m.text))
    _sign_in(pg, server["base"])
    assert any(c["name"] == "segmenta_session" for c in context.cookies())
    before = _accounts(server)
    assert _gold(server)["status"] == "live"
    attacker = context.new_page()
    attacker.goto(evil)
    attacker.wait_for_function("() => document.title === 'done'", timeout=30_000)
    assert _gold(server)["status"] == "live"
    assert _accounts(server) == before and "Evil" not in before
    audit = httpx.get(f"{server['base']}/api/audit", headers=server["admin"]).json()
    assert not any(e["action"] == "segments.stop" and e["outcome"] == "ok" for e in audit)
    # The builder's own page, same browser, same cookie: the same call goes through.
    done = pg.evaluate("async (url) => (await fetch(url, {method: 'POST'})).status", server["base"] + "/api/segments/Gold/stop")
    assert done == 200
    assert _gold(server)["status"] == "stopped"
    pg.reload()
    pg.wait_for_selector("#list-view:not([hidden])")
    assert not [m for m in console if "Content Security Policy" in m], console  # the builder runs under the CSP
    context.close()
