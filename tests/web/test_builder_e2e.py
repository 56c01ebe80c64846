"""The web segment builder in a real headless Chromium (Debian's), against a real `segmenta serve`.

A person builds a segment with a related-table path condition, a behavioural condition and a
BUT NOT group, watches the estimate, publishes it, uploads a CSV into a static list, and the
members agree with the CLI's evaluation of the same definition. Screenshots of the main pages
are written to artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, need

AS_OF = "2026-10-27T12:00:00"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEGMENTA_NOW": AS_OF}
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, conformance_dir: Path):
    ws = tmp_path_factory.mktemp("web") / "ws"
    assert cli("--workspace", str(ws), "init", "--model", str(conformance_dir / "model.yaml")).returncode == 0
    for f in sorted((conformance_dir / "data").glob("*.csv")):
        assert cli("--workspace", str(ws), "load", f.stem, str(f)).returncode == 0
    port = _free_port()
    env = {**os.environ, "SEGMENTA_NOW": AS_OF, "PYTHONUNBUFFERED": "1"}
    log = ws.parent / "serve.log"
    with log.open("w") as sink:  # a file, not a pipe: the server's access log must never block it
        proc = subprocess.Popen(
            [sys.executable, "-m", "segmenta", "--workspace", str(ws), "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    password = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        text = log.read_text()
        if (m := re.search(r"with password: (\S+)", text)) and "startup complete" in text:
            password = m.group(1)
            break
        time.sleep(0.1)
    assert password, log.read_text()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield {"base": base, "password": password, "ws": ws}
    proc.terminate()
    proc.wait(timeout=10)


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


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server["base"] + "/")
    pg.fill("#login-username", "admin")
    pg.fill("#login-password", server["password"])
    pg.click("#login-form button[type=submit]")
    pg.wait_for_selector("#list-view:not([hidden])")
    yield pg
    context.close()
    assert errors == [], errors


def by_id(ident: str) -> str:
    return f'[id="{ident}"]'


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_estimate(pg, expected: str) -> None:
    pg.wait_for_function("(want) => document.querySelector('#estimate-count').textContent === want", arg=expected, timeout=30_000)


def test_build_publish_and_compare_with_cli(page, server, tmp_path: Path) -> None:
    pg = page
    shot(pg, "01-segment-list")
    pg.click("#new-segment")
    pg.wait_for_selector("#builder-view:not([hidden])")
    pg.fill("#seg-name", "ui built")
    g0 = "/groups/0/where/all/0"
    # Group 1: a condition along the path contact -> account.
    pg.select_option(by_id(f"{g0}/field"), value="a|account|industry")
    pg.select_option(by_id(f"{g0}/op"), value="ne")
    pg.select_option(by_id(f"{g0}/value"), value="Retail")
    wait_estimate(pg, "3")  # contacts 2, 3, 7
    # Group 2, AND ALSO: any interaction in the last 90 days (behaviour with a time window).
    pg.click("#add-group")
    g1 = "/groups/1/where"
    pg.click(by_id(f"{g1}/all/0/remove"))
    pg.click(by_id(f"{g1}/add-related"))
    pg.select_option(by_id(f"{g1}/all/0/related"), value="interactions")
    pg.click(by_id(f"{g1}/all/0/add-window"))
    wait_estimate(pg, "2")  # 2 and 3 have interactions in the window; 7 has none
    # Group 3, BUT NOT: country is "de" (case-insensitive) removes contact 3.
    pg.click("#add-group")
    pg.select_option(by_id("/groups/2/link"), value="but_not")
    g2 = "/groups/2/where/all/0"
    pg.select_option(by_id(f"{g2}/field"), value="a||country")
    pg.fill(by_id(f"{g2}/value"), "de")
    wait_estimate(pg, "1")
    assert "Bob" in pg.inner_text("#preview")
    assert "null" not in pg.inner_text("#preview")
    shot(pg, "02-builder")

    pg.click("#publish")
    pg.wait_for_function("() => document.querySelector('#seg-status').textContent.includes('live')", timeout=30_000)
    shot(pg, "03-published")

    # The members the service stored equal the CLI's evaluation of the saved definition.
    headers = {"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in pg.context.cookies())}
    seg = httpx.get(f"{server['base']}/api/segments/ui%20built", headers=headers).json()
    assert seg["status"] == "live" and seg["size"] == 1
    definition = tmp_path / "ui-built.json"
    definition.write_text(json.dumps(seg["definition"]))
    out = tmp_path / "cli.csv"
    # The server holds the DuckDB file open; the CLI evaluates a copy of the same data.
    copy = tmp_path / "copy"
    shutil.copytree(server["ws"], copy, ignore=shutil.ignore_patterns("*.wal"))
    r = cli("--workspace", str(copy), "segment", "evaluate", str(definition), "--as-of", AS_OF, "--out", str(out))
    assert r.returncode == 0, r.stderr
    cli_keys = [int(x) for x in out.read_text().split()[1:]]
    members = httpx.get(f"{server['base']}/api/segments/ui%20built/members", headers=headers).json()
    served = members.get("keys") or [row["contactid"] for row in members.get("rows", [])]
    assert sorted(served) == cli_keys == [2]


def test_validation_message_appears_next_to_its_row(page) -> None:
    pg = page
    pg.click("#new-segment")
    g0 = "/groups/0/where/all/0"
    pg.select_option(by_id(f"{g0}/field"), value="a||score")
    pg.select_option(by_id(f"{g0}/op"), value="in")
    pg.fill(by_id(f"{g0}/value"), "abc")  # not a number
    problem = pg.wait_for_selector(f'[data-pointer="{g0}"] .problem', timeout=30_000)
    assert "number" in problem.inner_text()
    assert pg.inner_text("#estimate-count") == "–"
    shot(pg, "04-validation")


def test_upload_csv_into_static_list(page, tmp_path: Path) -> None:
    pg = page
    answers = iter(["vip list", "contact"])
    pg.on("dialog", lambda d: d.accept(next(answers)))
    pg.click("#new-list")
    pg.wait_for_selector("#upload-card:not([hidden])")
    csv_file = tmp_path / "upload.csv"
    csv_file.write_text(
        "Email,name\nann@northwind.example,Ann\n  BOB@contoso.example ,Bob\nnobody@example.com,No\n,Empty\nann@northwind.example,Again\n"
    )
    pg.set_input_files("#upload-file", str(csv_file))
    pg.click("#upload-form button[type=submit]")
    pg.wait_for_selector("#upload-members")
    counts = {k: pg.inner_text(f"#upload-{k}") for k in ("read", "found", "not_found", "duplicates", "members")}
    assert counts == {"read": "5", "found": "3", "not_found": "2", "duplicates": "1", "members": "2"}
    shot(pg, "05-csv-upload")
    pg.click("#nav-segments")
    pg.wait_for_selector("#list-view:not([hidden])")
    assert "vip list" in pg.inner_text("#segment-table")
    shot(pg, "06-segment-list-after")
