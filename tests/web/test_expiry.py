"""An expired segment shows as expired, and comes back through Draft, then Ready to use (as in Dynamics 365)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.web.conftest import conformance_workspace, serving, shot, sign_in

pytestmark = pytest.mark.browser

LATER = "2026-12-15T12:00:00"  # 49 days after the publish: past the 30-day default expiry


def test_an_expired_segment_is_reactivated_through_draft_then_ready(
    browser, tmp_path_factory: pytest.TempPathFactory, conformance_dir: Path
) -> None:
    ws = conformance_workspace(tmp_path_factory.mktemp("web-expiry") / "ws", conformance_dir)
    definition = {
        "name": "unused",
        "audience": "contact",
        "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}],
    }
    with serving(ws) as srv, httpx.Client(base_url=srv["base"]) as s:
        password = srv["password"]
        assert s.post("/api/auth/login", json={"username": "admin", "password": password}).status_code == 200
        seg = s.post("/api/segments", json={"definition": definition}).json()
        assert s.post(f"/api/segments/{seg['id']}/publish").status_code == 200
    with serving(ws, now=LATER) as srv, httpx.Client(base_url=srv["base"]) as s:
        assert s.post("/api/auth/login", json={"username": "admin", "password": password}).status_code == 200
        s.post("/api/worker/run")  # (the service's own scheduler may have expired it already)
        assert s.get(f"/api/segments/{seg['id']}").json()["status"] == "expired"
        pg = sign_in(browser, {**srv, "password": password})
        row = pg.locator('#segment-table tbody tr[data-name="unused"]')
        assert row.locator(".status").inner_text() == "expired"
        row.locator("a.seg-name").click()
        pg.wait_for_selector("#reactivate:not([hidden])")
        assert pg.is_hidden("#make-ready")
        # Read-only while expired: no editing, no publish.
        assert pg.is_visible("#expired-note") and pg.is_hidden("#publish") and pg.is_disabled('[id="/groups/0/where/value"]')
        shot(pg, "40-expired")
        pg.click("#reactivate")
        pg.wait_for_selector("#make-ready:not([hidden])")
        assert "draft" in pg.inner_text("#seg-status")
        assert pg.is_enabled('[id="/groups/0/where/value"]') and pg.is_visible("#save-draft")
        pg.click("#make-ready")
        pg.wait_for_function("() => document.querySelector('#seg-status .status').textContent === 'live'")
        assert pg.is_hidden("#reactivate") and pg.is_hidden("#make-ready")
        assert s.get(f"/api/segments/{seg['id']}").json()["status"] == "live"
        errors = pg.errors
        pg.context.close()
        assert errors == [], errors
