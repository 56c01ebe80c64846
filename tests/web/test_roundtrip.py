"""Every conformance definition and every example, opened in the builder and saved unchanged, comes
back exactly as it was saved: the builder reads its vocabulary from /api/model and never rewrites a
definition just by showing it (it once added a "count" to aggregates, which the server then refused)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.web.conftest import cli, cookies, serving, shot, sign_in

pytestmark = pytest.mark.browser

EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def normalised(definition: dict[str, Any]) -> dict[str, Any]:
    """Key order and surrounding blanks of the name do not matter; everything else does."""
    out = json.loads(json.dumps(definition))
    if isinstance(out.get("name"), str):
        out["name"] = out["name"].strip()
    return out


def open_and_save_each(browser, srv: dict[str, Any], files: list[Path]) -> None:
    pg = sign_in(browser, srv)
    headers = cookies(pg)
    base = srv["base"]
    failures = []
    for f in files:
        original = json.loads(f.read_text())
        created = httpx.post(f"{base}/api/segments", json={"definition": original}, headers=headers)
        assert created.status_code == 201, (f.name, created.text)
        seg = created.json()
        ref = str(seg.get("id") or seg["name"])
        pg.goto(f"{base}/#/segments/{ref}")
        pg.wait_for_selector("#builder-view:not([hidden])")
        pg.wait_for_function("(n) => document.querySelector('#builder-title').textContent === n", arg=seg["name"])
        pg.wait_for_function("() => !['…', ''].includes(document.querySelector('#estimate-count').textContent)")
        if f.stem in ("spend_last_year_over_1500", "gold-managers-clicked-or-big-spenders"):
            shot(pg, f"50-open-{f.stem}")
        with pg.expect_request(lambda r: r.method == "PUT" and "/api/segments/" in r.url) as sent:
            pg.click("#save-draft")
        pg.wait_for_function(
            "() => /Saved|saved/.test(document.querySelector('#save-message').textContent) || "
            "document.querySelector('#builder-problems').textContent || document.querySelector('.problem')"
        )
        put = json.loads(sent.value.post_data or "{}")["definition"]
        problems = pg.inner_text("#builder-problems") + " ".join(pg.locator(".problem").all_inner_texts())
        stored = httpx.get(f"{base}/api/segments/{ref}", headers=headers).json()["definition"]
        if normalised(put) != normalised(original) or normalised(stored) != normalised(original) or problems.strip():
            failures.append((f.name, problems, put))
    pg.context.close()
    assert failures == [], failures
    assert pg.errors == [], pg.errors


def test_conformance_definitions_round_trip(browser, server, conformance_dir: Path) -> None:
    files = sorted((conformance_dir / "segments").glob("*.json"))
    assert any(f.stem == "spend_last_year_over_1500" for f in files)
    open_and_save_each(browser, server, files)


def test_examples_round_trip(browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    ws = tmp_path_factory.mktemp("web-examples") / "ws"
    r = cli("--workspace", str(ws), "init")
    assert r.returncode == 0, r.stderr
    assert EXAMPLES
    with serving(ws) as srv:
        open_and_save_each(browser, srv, EXAMPLES)
