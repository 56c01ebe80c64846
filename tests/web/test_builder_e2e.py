"""The web segment builder in a real headless Chromium (Debian's), against a real `segmenta serve`.

A person builds a segment with a related-table path condition, a behavioural condition and a
BUT NOT group, watches the estimate, publishes it, uploads a CSV into a static list, and the
members agree with the CLI's evaluation of the same definition. Screenshots of the main pages
are written to artifacts/screenshots/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import AS_OF, by_id, cli, shot, wait_estimate

pytestmark = pytest.mark.browser


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
    pg.wait_for_selector("#dialog[open] #publish-after")
    assert pg.inner_text("#publish-after") == "1"
    pg.click("#dialog-ok")
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
    pg.click("#new-list")
    # An in-page dialog with an audience dropdown, not window.prompt.
    pg.wait_for_selector("#dialog[open] #list-audience")
    audiences = pg.eval_on_selector("#list-audience", "s => [...s.options].map(o => o.value)")
    assert "contact" in audiences and "account" in audiences
    pg.fill("#list-name", "vip list")
    pg.select_option("#list-audience", value="contact")
    shot(pg, "05a-new-list-dialog")
    pg.click("#list-create")
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
