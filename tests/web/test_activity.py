"""The segment page's live activity panel (issue 11 item 6): entered/exited per minute, moving as records change.

The counts come from the membership events; a record change sent to the REST API while the
page is open reaches the panel through the event stream, without reloading the page, and the
page raises no CSP violation (no inline script or style).
"""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import cookies, create, ref_of, shot

pytestmark = pytest.mark.browser

GOLD = {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]}


def _text(pg, selector: str) -> str:
    return str(pg.inner_text(selector)).strip()


def test_the_panel_counts_the_publish_and_follows_record_changes_live(page, server) -> None:
    seg = create(page, server, "Gold live", GOLD, publish=True)
    page.goto(f"{server['base']}/#/segments/{ref_of(seg)}")
    page.wait_for_selector("#activity-entered")
    entered = int(_text(page, "#activity-entered").replace(",", ""))
    assert entered == seg["size"] > 0  # the publish: every member entered, in the last hour
    assert _text(page, "#activity-exited") == "0"
    assert page.locator("#activity .activity-minute").count() == 60
    page.wait_for_selector("#activity-live:has-text('Live')")

    # contact 2 (Silver) becomes Gold, contact 1 (Gold) becomes Bronze: one enters, one exits
    changed = httpx.post(
        f"{server['base']}/api/tables/contact/records",
        json=[{"contactid": 2, "tier": "Gold"}, {"contactid": 1, "tier": "Bronze"}],
        headers=cookies(page),
        timeout=120,  # a busy machine: the change refreshes the segment before it answers
    )
    assert changed.status_code == 200, changed.text
    page.wait_for_function(
        "(want) => document.querySelector('#activity-exited')?.textContent === '1'"
        " && document.querySelector('#activity-entered')?.textContent === want",
        arg=f"{entered + 1:,}",
        timeout=30_000,
    )
    assert _text(page, "#activity-now").startswith("+")
    shot(page, "40-segment-live-activity")

    page.goto(f"{server['base']}/#/")  # leaving the segment closes its stream
    page.wait_for_selector("#list-view:not([hidden])")
