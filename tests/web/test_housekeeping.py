"""Names, ids and housekeeping in the list; what the builder shows beside a segment (issue 8 sections 4 and 5)."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.web.conftest import by_id, cookies, create, get, ref_of, shot, sign_in, wait_estimate

pytestmark = pytest.mark.browser

EVERYONE = {"audience": "contact", "groups": [{"where": {"all": []}}]}
G0 = "/groups/0/where/all/0"


@pytest.fixture()
def pg(browser, server):
    page = sign_in(browser, server)
    yield page
    errors = page.errors
    page.context.close()
    assert errors == [], errors


def open_list(pg, server) -> None:
    pg.goto(f"{server['base']}/#/segments")
    pg.click("#nav-segments")
    pg.wait_for_selector("#list-view:not([hidden])")


def row(pg, name: str):
    return pg.locator(f'#segment-table tbody tr[data-name="{name}"]')


def test_a_name_with_a_slash_is_opened_published_and_deleted_by_id(pg, server) -> None:
    seg = create(
        pg,
        server,
        "EMEA / Gold",
        {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]},
    )
    assert isinstance(seg.get("id"), int)
    open_list(pg, server)
    row(pg, "EMEA / Gold").locator("a.seg-name").click()
    pg.wait_for_function("() => document.querySelector('#builder-title').textContent === 'EMEA / Gold'")
    assert pg.url.endswith(f"#/segments/{seg['id']}")
    pg.click("#publish")
    pg.click("#dialog[open] #dialog-ok")
    pg.wait_for_function("() => document.querySelector('#seg-status').textContent.includes('live')")
    assert get(pg, server, str(seg["id"]))["status"] == "live"
    open_list(pg, server)
    row(pg, "EMEA / Gold").get_by_role("button", name="Delete EMEA / Gold").click()
    pg.click("#dialog[open] #dialog-ok")
    pg.wait_for_function("() => !document.querySelector('#segment-table tbody tr[data-name=\"EMEA / Gold\"]')")
    assert httpx.get(f"{server['base']}/api/segments/{seg['id']}", headers=cookies(pg)).status_code == 404


def test_long_names_stay_inside_the_page(pg, server) -> None:
    name = "Very long name " + "x" * 185
    assert len(name) == 200
    create(pg, server, name, EVERYONE)
    open_list(pg, server)
    wide = pg.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], wide
    shot(pg, "20-long-name-list")
    row(pg, name).locator("a.seg-name").click()
    pg.wait_for_selector("#builder-view:not([hidden])")
    wide = pg.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], wide
    assert pg.get_attribute("#seg-name", "maxlength") == "200"


def test_search_sort_rename_and_duplicate_in_the_list(pg, server) -> None:
    create(pg, server, "zeta list test", EVERYONE)
    create(
        pg,
        server,
        "alpha list test",
        {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]},
    )
    open_list(pg, server)
    pg.fill("#list-search", "list test")
    names = pg.locator("#segment-table tbody a.seg-name").all_inner_texts()
    assert names == ["alpha list test", "zeta list test"]
    pg.select_option("#list-sort", value="name")
    pg.fill("#list-search", "zeta")
    assert pg.locator("#segment-table tbody a.seg-name").all_inner_texts() == ["zeta list test"]
    pg.fill("#list-search", "no such segment at all")
    assert pg.is_visible("#list-nomatch")
    pg.fill("#list-search", "list test")
    row(pg, "alpha list test").get_by_role("button", name="Rename alpha list test").click()
    pg.fill("#dialog[open] #name-input", "alpha list test renamed")
    pg.click("#dialog[open] #name-ok")
    pg.wait_for_selector('#segment-table tbody tr[data-name="alpha list test renamed"]')
    row(pg, "zeta list test").get_by_role("button", name="Duplicate zeta list test").click()
    assert pg.input_value("#dialog[open] #name-input") == "zeta list test (copy)"
    pg.click("#dialog[open] #name-ok")
    pg.wait_for_function("() => document.querySelector('#builder-title').textContent === 'zeta list test (copy)'")
    copy = get(pg, server, "zeta list test (copy)")
    assert copy["definition"]["groups"] == EVERYONE["groups"] and copy["status"] == "draft"
    shot(pg, "21-duplicated")


def test_sign_out_ends_the_session(pg, server) -> None:
    before = cookies(pg)
    assert httpx.get(f"{server['base']}/api/auth/me", headers=before).status_code == 200
    pg.click("#sign-out")
    pg.wait_for_selector("#login-view:not([hidden])")
    assert httpx.get(f"{server['base']}/api/auth/me", headers=before).status_code == 401


def test_the_sample_shows_the_rules_attributes_clears_when_invalid_and_stays_in_its_card(pg, server) -> None:
    pg.click("#new-segment")
    pg.select_option(by_id(f"{G0}/field"), value="a||tier")
    pg.select_option(by_id(f"{G0}/value"), value="Gold")
    pg.wait_for_selector("#preview table")
    heads = pg.locator("#preview th").all_inner_texts()
    assert "tier" in heads, heads
    fits = pg.evaluate(
        "() => { const card = document.querySelector('#preview').closest('.card').getBoundingClientRect();"
        " const t = document.querySelector('#preview .table-scroll').getBoundingClientRect();"
        " return t.right <= card.right + 0.5 && t.left >= card.left - 0.5; }"
    )
    assert fits
    pg.select_option(by_id(f"{G0}/field"), value="a||score")
    pg.select_option(by_id(f"{G0}/op"), value="in")
    pg.fill(by_id(f"{G0}/value"), "abc")
    pg.wait_for_selector(f'[data-pointer="{G0}"] .problem')
    assert pg.locator("#preview table").count() == 0
    assert "problems" in pg.inner_text("#preview")


def test_members_page_through_and_export(pg, server) -> None:
    seg = create(pg, server, "everyone paged", EVERYONE, publish=True)
    total = seg["size"]
    assert total > 5
    pg.goto(f"{server['base']}/#/segments/{ref_of(seg)}")
    pg.wait_for_selector("#members table")
    pg.select_option("#members-size", value="5")
    pg.wait_for_function("() => document.querySelector('#members-range').textContent.startsWith('1–5 of')")
    assert pg.locator("#members tbody tr").count() == 5
    pg.click("#members-next")
    pg.wait_for_function("(t) => document.querySelector('#members-range').textContent.startsWith(`6–${t} of ${t}`)", arg=total)
    assert pg.is_disabled("#members-next") and pg.is_enabled("#members-prev")
    href = pg.get_attribute("#members-export", "href")
    assert href.startswith(f"/api/segments/{ref_of(seg)}/members.csv")
    r = httpx.get(server["base"] + href, headers=cookies(pg))
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][0] == "contactid" and len(rows) == total + 1


def test_the_in_segment_picker_offers_a_segment_published_in_this_session(pg, server) -> None:
    pg.click("#new-segment")
    pg.fill("#seg-name", "published just now")
    pg.click("#publish")
    pg.click("#dialog[open] #dialog-ok")
    pg.wait_for_function("() => document.querySelector('#seg-status').textContent.includes('live')")
    pg.click("#nav-new")
    pg.wait_for_function("() => document.querySelector('#builder-title').textContent === 'New segment'")
    pg.select_option(by_id(f"{G0}/field"), value="s|")
    options = pg.eval_on_selector(by_id(f"{G0}/segment"), "s => [...s.options].map(o => o.value)")
    assert "published just now" in options


def test_used_by_and_next_refresh_are_shown(pg, server) -> None:
    base = create(pg, server, "used base", EVERYONE, publish=True)
    user = create(pg, server, "uses base", {"audience": "contact", "groups": [{"where": {"in_segment": "used base"}}]})
    pg.goto(f"{server['base']}/#/segments/{ref_of(base)}")
    pg.wait_for_selector('#facts dd[data-fact="Used by"]')
    link = pg.locator('#facts dd[data-fact="Used by"] a.used-by')
    assert link.inner_text().startswith("uses base")
    assert link.get_attribute("href") == f"#/segments/{ref_of(user)}"
    if "next_refresh_at" in base:
        assert pg.locator('#facts dd[data-fact="Next refresh"]').count() == 1
    assert pg.locator('#facts dd[data-fact="Last refresh"]').count() == 1  # a published segment has been refreshed
    shot(pg, "22-used-by")


def test_the_estimate_matches_after_a_static_list_upload(pg, server, tmp_path) -> None:
    pg.click("#new-list")
    pg.fill("#dialog[open] #list-name", "upload shows members")
    pg.click("#dialog[open] #list-create")
    pg.wait_for_selector("#upload-card:not([hidden])")
    f = tmp_path / "people.csv"
    f.write_text("email\nann@northwind.example\nBOB@contoso.example\n")
    pg.set_input_files("#upload-file", str(f))
    pg.click("#upload-form button[type=submit]")
    pg.wait_for_selector("#upload-members")
    pg.wait_for_selector("#members tbody tr")
    assert pg.locator("#members tbody tr").count() == 2
    wait_estimate(pg, "2")
    assert "2 members" in pg.inner_text("#seg-status")


def test_an_unusual_email_header_is_picked_from_the_file_in_the_upload_card(pg, server, tmp_path) -> None:
    pg.click("#new-list")
    pg.fill("#dialog[open] #list-name", "courriel list")
    pg.click("#dialog[open] #list-create")
    pg.wait_for_selector("#upload-card:not([hidden])")
    f = tmp_path / "export.csv"
    f.write_text("Nom;Courriel\nAnn;ann@northwind.example\nBob;bob@contoso.example\n")
    pg.set_input_files("#upload-file", str(f))
    pg.wait_for_function("() => document.querySelector('#upload-column').options.length === 3")
    pg.click("#upload-form button[type=submit]")
    error = pg.wait_for_selector("#upload-error")
    assert "export.csv" in error.inner_text() and "/tmp" not in error.inner_text()
    pg.select_option("#upload-column", value="Courriel")
    pg.click("#upload-form button[type=submit]")
    pg.wait_for_selector("#upload-members")
    assert pg.inner_text("#upload-found") == "2"
    shot(pg, "23-upload-column")


def test_the_sample_shows_path_attributes_measures_and_the_latest_related_record(pg, server) -> None:
    pg.click("#new-segment")
    pg.select_option(by_id(f"{G0}/field"), value="a|account|industry")
    pg.select_option(by_id(f"{G0}/op"), value="ne")
    pg.select_option(by_id(f"{G0}/value"), value="Retail")
    pg.click(by_id("/groups/0/where/add-condition"))
    pg.select_option(by_id("/groups/0/where/all/1/field"), value="m|total_spend")
    pg.select_option(by_id("/groups/0/where/all/1/op"), value="gte")
    pg.fill(by_id("/groups/0/where/all/1/value"), "0")
    pg.click(by_id("/groups/0/where/add-related"))
    pg.wait_for_function("() => [...document.querySelectorAll('#preview th.extra')].length === 3")
    heads = pg.locator("#preview th").all_inner_texts()
    assert {"account › industry", "total_spend", "last interaction ts"} <= set(heads), heads
    cells = pg.locator("#preview tbody tr").first.locator("td").all_inner_texts()
    assert cells[heads.index("account › industry")] in ("Tech", "Finance", "Health")
    shot(pg, "24-sample-extras")


def test_a_viewer_sees_no_button_for_what_the_role_cannot_do(browser, server) -> None:
    admin = sign_in(browser, server)
    seg = create(admin, server, "for viewers", EVERYONE)
    r = httpx.post(
        f"{server['base']}/api/users",
        json={"username": "vera", "password": "correct horse battery", "role": "viewer"},
        headers=cookies(admin),
    )
    assert r.status_code == 201, r.text
    admin.context.close()
    pg = sign_in(browser, server, user="vera", password="correct horse battery")
    assert pg.is_hidden("#new-segment") and pg.is_hidden("#new-list") and pg.is_hidden("#nav-new")
    assert row(pg, "for viewers").get_by_role("button").count() == 0
    pg.goto(f"{server['base']}/#/segments/{ref_of(seg)}")
    pg.wait_for_function("() => document.querySelector('#builder-title').textContent === 'for viewers'")
    assert pg.is_hidden("#save-draft") and pg.is_hidden("#publish") and pg.is_hidden("#add-group")
    assert pg.is_disabled(by_id("/groups/0/where/add-condition"))
    errors = pg.errors
    pg.context.close()
    assert errors == [], errors
