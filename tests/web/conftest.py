"""Browser tests: a real ``segmenta serve`` on loopback and Debian's Chromium through Playwright.

Servers and the browser are shared per module (the machine is small); each test gets a fresh,
signed-in browser context.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, need

AS_OF = "2026-10-27T12:00:00"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEGMENTA_NOW": AS_OF}
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True, env=env)


def conformance_workspace(ws: Path, conformance_dir: Path) -> Path:
    assert cli("--workspace", str(ws), "init", "--model", str(conformance_dir / "model.yaml")).returncode == 0
    for f in sorted((conformance_dir / "data").glob("*.csv")):
        assert cli("--workspace", str(ws), "load", f.stem, str(f)).returncode == 0
    return ws


@contextmanager
def serving(ws: Path, *, now: str = AS_OF) -> Iterator[dict[str, Any]]:
    """``segmenta serve`` on a free loopback port until the block ends: base URL, admin password, workspace.

    ``now`` is the service's clock. The admin password is printed once, when the store is first made.
    """
    port = free_port()
    env = {**os.environ, "SEGMENTA_NOW": now, "PYTHONUNBUFFERED": "1"}
    log = ws.parent / f"serve-{port}.log"
    with log.open("w") as sink:  # a file, not a pipe: the server's access log must never block it
        proc = subprocess.Popen(
            [sys.executable, "-m", "segmenta", "--workspace", str(ws), "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        password = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text()
            if "startup complete" in text:
                m = re.search(r"with password: (\S+)", text)
                password = m.group(1) if m else ""
                break
            time.sleep(0.1)
        assert password is not None, log.read_text()
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield {"base": base, "password": password, "ws": ws, "log": log}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, conformance_dir: Path) -> Iterator[dict[str, Any]]:
    ws = conformance_workspace(tmp_path_factory.mktemp("web") / "ws", conformance_dir)
    with serving(ws) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    need(Path(CHROMIUM).exists(), "Debian's chromium (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        need(False, "the playwright package (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def sign_in(browser, srv: dict[str, Any], *, user: str = "admin", password: str | None = None, hash_: str = ""):
    """A new browser context signed in as ``user``; console errors and CSP violations are collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None)
    pg.goto(srv["base"] + "/" + hash_)
    pg.fill("#login-username", user)
    pg.fill("#login-password", password or srv["password"])
    pg.click("#login-form button[type=submit]")
    pg.wait_for_selector("#list-view:not([hidden]), #builder-view:not([hidden])")
    pg.errors = errors
    return pg


@pytest.fixture()
def page(browser, server):
    pg = sign_in(browser, server)
    yield pg
    errors = pg.errors
    pg.context.close()
    assert errors == [], errors


def by_id(ident: str) -> str:
    return f'[id="{ident}"]'


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_estimate(pg, expected: str) -> None:
    pg.wait_for_function("(want) => document.querySelector('#estimate-count').textContent === want", arg=expected, timeout=30_000)


def cookies(pg) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in pg.context.cookies())}


# -- the service through its API, with the signed-in page's session ----------------------------


def create(pg, srv, name: str, definition: dict[str, Any], *, publish: bool = False) -> dict[str, Any]:
    base, headers = srv["base"], cookies(pg)
    r = httpx.post(f"{base}/api/segments", json={"definition": {**definition, "name": name}}, headers=headers)
    assert r.status_code == 201, r.text
    seg = r.json()
    if publish:
        r = httpx.post(f"{base}/api/segments/{seg.get('id') or name}/publish", headers=headers)
        assert r.status_code == 200, r.text
    return get(pg, srv, str(seg.get("id") or name))


def get(pg, srv, ref: str) -> dict[str, Any]:
    r = httpx.get(f"{srv['base']}/api/segments/{ref}", headers=cookies(pg))
    assert r.status_code == 200, r.text
    return r.json()


def estimate(pg, srv, definition: dict[str, Any]) -> int:
    r = httpx.post(f"{srv['base']}/api/definitions/estimate", json={"definition": definition}, headers=cookies(pg))
    assert r.status_code == 200, r.text
    return r.json()["count"]


def ref_of(seg: dict[str, Any]) -> str:
    return str(seg.get("id") or seg["name"])
