"""Drafts kept in the browser may hold PII condition values: signing out removes that user's drafts.

One server for the module; the test signs in with a fresh browser context.
"""

from __future__ import annotations

import pytest

from tests.web.conftest import by_id, sign_in

pytestmark = pytest.mark.browser

G0 = "/groups/0/where/all/0"
DRAFTS = "() => Object.keys(localStorage).filter((k) => k.startsWith('segmenta.draft')).sort()"


def test_signing_out_removes_the_users_drafts_and_no_one_elses(browser, server) -> None:
    pg = sign_in(browser, server)
    try:
        # Another user of this browser ("admin.b": a user name may hold dots) keeps theirs.
        pg.evaluate("() => localStorage.setItem('segmenta.draft:admin.b:new', '{}')")
        pg.click("#new-segment")
        pg.wait_for_selector("#builder-view:not([hidden])")
        pg.select_option(by_id(f"{G0}/field"), value="a||tier")
        pg.select_option(by_id(f"{G0}/value"), value="Bronze")
        pg.wait_for_function(f"() => ({DRAFTS})().length === 2")
        assert any(k != "segmenta.draft:admin.b:new" for k in pg.evaluate(DRAFTS))
        pg.click("#sign-out")
        pg.wait_for_selector("#dialog[open]")
        assert "removes your drafts" in pg.inner_text("#dialog")
        pg.click("#dialog-ok")
        pg.wait_for_selector("#login-view:not([hidden])")
        assert pg.evaluate(DRAFTS) == ["segmenta.draft:admin.b:new"]
        assert pg.errors == [], pg.errors
    finally:
        pg.context.close()
