"""The builder never changes an audience silently, and never loses work (issue 8 sections 2 and 3).

One server for the module; each test signs in with a fresh browser context.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import by_id, cookies, create, estimate, get, ref_of, shot, sign_in, wait_estimate

pytestmark = pytest.mark.browser

G0 = "/groups/0/where/all/0"


def tier(value: str) -> dict[str, Any]:
    return {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": value}}]}


@pytest.fixture()
def pg(browser, server):
    page = sign_in(browser, server)
    yield page
    errors = page.errors
    page.context.close()
    assert errors == [], errors


def new_segment(pg) -> None:
    pg.click("#new-segment")
    pg.wait_for_selector("#builder-view:not([hidden])")


def test_saving_a_live_segment_keeps_its_audience_until_publish_which_shows_before_and_after(pg, server) -> None:
    seg = create(pg, server, "live gold", tier("Gold"), publish=True)
    gold = seg["size"]
    not_gold = {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "ne", "value": "Gold"}}]}
    silver = estimate(pg, server, not_gold)
    assert seg["status"] == "live" and silver != gold
    pg.goto(f"{server['base']}/#/segments/{ref_of(seg)}")
    pg.wait_for_selector(by_id("/groups/0/where/field"))
    pg.select_option(by_id("/groups/0/where/op"), value="ne")
    wait_estimate(pg, str(silver))
    pg.click("#save-draft")
    pg.wait_for_function("() => document.querySelector('#save-message').textContent.includes('live audience is unchanged')")
    assert "until you publish" in pg.inner_text("#save-message")
    assert pg.inner_text("#pending-draft") == "unpublished draft: version 2"
    after_save = get(pg, server, ref_of(seg))
    assert after_save["status"] == "live" and after_save["size"] == gold
    # Publish asks first, with the live size now and the size after; cancelling changes nothing.
    pg.click("#publish")
    pg.wait_for_selector("#dialog[open] #publish-before")
    assert pg.inner_text("#publish-before") == str(gold) and pg.inner_text("#publish-after") == str(silver)
    shot(pg, "10-publish-confirm")
    pg.click("#dialog-cancel")
    assert get(pg, server, ref_of(seg))["size"] == gold
    pg.click("#publish")
    pg.click("#dialog[open] #dialog-ok")
    pg.wait_for_function("() => document.querySelector('#save-message').textContent.startsWith('Published')")
    assert pg.locator("#pending-draft").count() == 0
    assert get(pg, server, ref_of(seg))["size"] == silver


def _gold_but_not_fr(pg) -> None:
    new_segment(pg)
    pg.select_option(by_id(f"{G0}/field"), value="a||tier")
    pg.select_option(by_id(f"{G0}/value"), value="Gold")
    pg.click("#add-group")
    pg.select_option(by_id("/groups/1/link"), value="but_not")
    pg.select_option(by_id("/groups/1/where/all/0/field"), value="a||country")
    pg.fill(by_id("/groups/1/where/all/0/value"), "FR")


def test_removing_the_first_group_asks_how_a_but_not_group_should_read(pg, server) -> None:
    fr = {"attribute": "country", "op": "eq", "value": "FR"}
    everyone_but_fr = estimate(
        pg, server, {"audience": "contact", "groups": [{"where": {"all": []}}, {"link": "but_not", "where": {"all": [fr]}}]}
    )
    only_fr = estimate(pg, server, {"audience": "contact", "groups": [{"where": {"all": [fr]}}]})
    assert everyone_but_fr != only_fr
    _gold_but_not_fr(pg)
    pg.click(by_id("/groups/0/remove"))
    pg.wait_for_selector("#dialog[open] #first-everyone-but")
    shot(pg, "11-remove-first-group")
    pg.click("#first-everyone-but")
    wait_estimate(pg, str(everyone_but_fr))
    assert pg.eval_on_selector(by_id("/groups/1/link"), "s => s.value") == "but_not"
    assert pg.is_visible(by_id("/groups/0/empty-warning"))
    # The other answer: group 2 becomes the first group and loses its link.
    pg.click(by_id("/groups/0/remove"))
    pg.click("#dialog[open] #first-only")
    wait_estimate(pg, str(only_fr))
    assert pg.locator(by_id("/groups/0/link")).count() == 0
    assert pg.locator(by_id("/groups/1/link")).count() == 0


def test_removing_the_first_group_can_be_cancelled(pg, server) -> None:
    _gold_but_not_fr(pg)
    pg.click(by_id("/groups/0/remove"))
    pg.click("#dialog[open] #dialog-cancel")
    assert pg.eval_on_selector(by_id("/groups/1/link"), "s => s.value") == "but_not"
    assert pg.eval_on_selector(by_id(f"{G0}/value"), "s => s.value") == "Gold"


def test_an_empty_group_warns_and_publishing_it_needs_confirmation(pg, server) -> None:
    new_segment(pg)
    pg.fill("#seg-name", "everyone")
    pg.click(by_id(f"{G0}/remove"))
    assert pg.is_visible(by_id("/groups/0/empty-warning"))
    assert "every record" in pg.inner_text(by_id("/groups/0/empty-warning"))
    pg.click("#publish")
    pg.wait_for_selector("#dialog[open] #publish-empty-warning")
    assert pg.inner_text("#dialog-ok") == "Publish anyway"
    pg.click("#dialog-cancel")
    r = httpx.get(f"{server['base']}/api/segments/everyone", headers=cookies(pg))
    assert r.status_code == 404  # nothing saved or published without the confirmation


def test_changing_the_audience_asks_before_clearing_the_groups(pg, server) -> None:
    new_segment(pg)
    pg.select_option(by_id(f"{G0}/field"), value="a||tier")
    pg.select_option(by_id(f"{G0}/value"), value="Silver")
    pg.select_option("#seg-audience", value="account")
    pg.wait_for_selector("#dialog[open]")
    pg.click("#dialog-cancel")
    assert pg.eval_on_selector("#seg-audience", "s => s.value") == "contact"
    assert pg.eval_on_selector(by_id(f"{G0}/value"), "s => s.value") == "Silver"
    pg.select_option("#seg-audience", value="account")
    pg.click("#dialog[open] #dialog-ok")
    pg.wait_for_function("(f) => document.getElementById(f).value.startsWith('a||')", arg=f"{G0}/field")
    assert pg.locator(by_id(f"{G0}/value")).count() == 0 or pg.eval_on_selector(by_id(f"{G0}/field"), "s => s.value") != "a||tier"


# -- never lose work ---------------------------------------------------------------------------


def test_every_page_has_a_url_that_reload_and_back_keep(pg, server) -> None:
    seg = create(pg, server, "routed", tier("Bronze"))
    pg.goto(f"{server['base']}/#/segments")
    pg.click("#nav-segments")
    pg.wait_for_selector("#segment-table a.seg-name")
    pg.click("#segment-table a.seg-name:text-is('routed')")
    pg.wait_for_function("(n) => document.querySelector('#builder-title').textContent === n", arg="routed")
    assert pg.url.endswith(f"#/segments/{ref_of(seg)}")
    pg.reload()
    pg.wait_for_function("(n) => document.querySelector('#builder-title').textContent === n", arg="routed")
    assert pg.eval_on_selector(by_id("/groups/0/where/value"), "s => s.value") == "Bronze"
    pg.click("#versions a")
    pg.wait_for_selector("#version-banner:not([hidden])")
    assert pg.url.endswith(f"#/segments/{ref_of(seg)}/versions/1")
    assert pg.is_disabled(by_id("/groups/0/where/value"))
    pg.go_back()
    pg.wait_for_selector("#version-banner[hidden]", state="attached")
    assert pg.is_enabled(by_id("/groups/0/where/value"))
    pg.go_back()
    pg.wait_for_selector("#list-view:not([hidden])")
    pg.goto(f"{server['base']}/#/new")
    pg.reload()
    pg.wait_for_function("() => document.querySelector('#builder-title').textContent === 'New segment'")


def test_leaving_with_unsaved_changes_asks_first(pg, server) -> None:
    seg = create(pg, server, "guarded", tier("Gold"))
    pg.goto(f"{server['base']}/#/segments/{ref_of(seg)}")
    pg.wait_for_selector(by_id("/groups/0/where/value"))
    pg.select_option(by_id("/groups/0/where/value"), value="Silver")
    pg.click("#nav-segments")
    pg.wait_for_selector("#dialog[open]")
    assert "not saved" in pg.inner_text("#dialog")
    pg.click("#dialog-cancel")
    assert pg.is_visible("#builder-view") and pg.url.endswith(f"#/segments/{ref_of(seg)}")
    assert pg.eval_on_selector(by_id("/groups/0/where/value"), "s => s.value") == "Silver"
    # Closing the tab or reloading: the browser's own "leave site?" question (beforeunload).
    kinds: list[str] = []
    pg.on("dialog", lambda d: (kinds.append(d.type), d.dismiss()))
    pg.close(run_before_unload=True)
    pg.wait_for_timeout(300)
    assert kinds == ["beforeunload"]


def test_unsaved_work_is_kept_in_the_browser_and_offered_back(pg, server) -> None:
    new_segment(pg)
    pg.fill("#seg-name", "kept locally")
    pg.select_option(by_id(f"{G0}/field"), value="a||tier")
    pg.select_option(by_id(f"{G0}/value"), value="Bronze")
    pg.wait_for_timeout(300)
    other = pg.context.new_page()  # same browser profile: as after a crash or a closed tab
    other.goto(f"{server['base']}/#/new")
    other.wait_for_selector("#draft-offer:not([hidden])")
    shot(other, "12-draft-offer")
    other.click("#draft-restore")
    assert other.input_value("#seg-name") == "kept locally"
    assert other.eval_on_selector(by_id(f"{G0}/value"), "s => s.value") == "Bronze"
    other.close()


def test_an_earlier_version_can_be_edited_and_saved_as_the_new_draft(pg, server) -> None:
    seg = create(pg, server, "versioned", tier("Gold"))
    r = httpx.put(
        f"{server['base']}/api/segments/{ref_of(seg)}",
        json={"definition": {**tier("Silver"), "name": "versioned"}},
        headers=cookies(pg),
    )
    assert r.status_code == 200, r.text
    pg.goto(f"{server['base']}/#/segments/{ref_of(seg)}/versions/1")
    pg.wait_for_selector("#version-banner:not([hidden])")
    assert pg.eval_on_selector(by_id("/groups/0/where/value"), "s => s.value") == "Gold"
    pg.click("#version-use")
    assert pg.url.endswith(f"#/segments/{ref_of(seg)}") and pg.is_enabled(by_id("/groups/0/where/value"))
    pg.click("#save-draft")
    pg.wait_for_function(
        "() => /[Ss]aved/.test(document.querySelector('#save-message').textContent) && !document.querySelector('#save-message').textContent.includes('earlier')"
    )
    assert get(pg, server, ref_of(seg))["definition"]["groups"] == tier("Gold")["groups"]
