"""The "API tokens" page (issue 9 item 8): make a token with an expiry, see its secret once, revoke it."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest

from tests.web.conftest import shot, sign_in

pytestmark = pytest.mark.browser


def _about_a_week_from_now(text: str) -> bool:
    """``text`` names (in UTC, to the minute) an instant 7 days after now: sign-in tokens run on the real clock."""
    m = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", text)
    assert m, text
    shown = dt.datetime.strptime(m.group(0), "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
    return abs(shown - (dt.datetime.now(dt.UTC) + dt.timedelta(days=7))) < dt.timedelta(minutes=3)


def _me(server, token: str) -> int:
    return httpx.get(f"{server['base']}/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_token_is_made_with_an_expiry_shown_once_used_and_revoked(browser, server) -> None:
    pg = sign_in(browser, server)
    pg.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server["base"])
    pg.click("#nav-tokens")
    pg.wait_for_selector("#tokens-view:not([hidden])")
    assert pg.url.endswith("#/tokens")
    assert pg.inner_text("#tokens-user") == "admin"

    pg.wait_for_selector("#tokens-table:not([hidden]), #tokens-empty:not([hidden])")
    before = pg.locator("#tokens-table tbody tr").count()
    pg.click("#token-new")
    pg.fill("#dialog[open] #token-label", "nightly export")
    pg.fill("#dialog[open] #token-days", "0")
    pg.click("#dialog[open] #token-create")
    assert "whole number of days from 1 to 3650" in pg.inner_text("#dialog[open] #token-problem")
    assert pg.locator("#tokens-table tbody tr").count() == before  # nothing made from a bad expiry
    pg.fill("#dialog[open] #token-days", "7")
    pg.click("#dialog[open] #token-create")
    pg.wait_for_selector("#dialog[open] #token-secret")
    secret = pg.input_value("#dialog[open] #token-secret")
    assert len(secret) > 20
    assert _about_a_week_from_now(pg.inner_text("#dialog[open]"))
    pg.click("#dialog[open] #token-copy")
    pg.wait_for_function("() => document.querySelector('#token-copied').textContent !== ''")
    assert pg.inner_text("#token-copied") == "Copied."
    assert pg.evaluate("() => navigator.clipboard.readText()") == secret
    shot(pg, "30-token-secret-once")
    pg.click("#dialog[open] #token-done")
    assert pg.locator("#dialog[open]").count() == 0
    assert secret not in pg.content()  # gone with the dialog

    assert _me(server, secret) == 200
    row = pg.locator("#tokens-table tbody tr").filter(has_text="nightly export")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "nightly export" and secret.startswith(cells[1].rstrip("…"))
    assert _about_a_week_from_now(cells[3]) and cells[5] == "active", cells

    row.get_by_role("button", name="Revoke nightly export").click()
    assert "stops working" in pg.inner_text("#dialog[open]")
    pg.click("#dialog[open] #dialog-ok")
    pg.wait_for_selector('#tokens-table tbody tr[data-state="revoked"]')
    assert "is revoked" in pg.inner_text("#tokens-message")
    assert _me(server, secret) == 401

    pg.reload()
    pg.wait_for_selector('#tokens-view:not([hidden]) #tokens-table tbody tr[data-state="revoked"]')
    assert secret not in pg.content()
    assert secret not in pg.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    row = pg.locator("#tokens-table tbody tr").filter(has_text="nightly export")
    cells = row.locator("td").all_inner_texts()
    assert cells[5].startswith("revoked") and cells[4] != "never", cells  # it was used once, before revoking
    assert row.get_by_role("button").count() == 0
    shot(pg, "31-token-revoked")
    errors = pg.errors
    pg.context.close()
    assert errors == [], errors
