"""The builder speaks the marketer's language (issue 8 section 6): model labels instead of column
names, a searchable attribute picker grouped by table, value suggestions from the data (never for
PII), new conditions that do not empty the estimate, the busiest relationship first, and problems
worded without JSON."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from tests.web.conftest import by_id, cli, serving, shot, sign_in, wait_estimate

pytestmark = pytest.mark.browser

G0 = "/groups/0/where/all/0"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory, conformance_dir: Path):
    """The conformance workspace with labels in its model.yaml."""
    root = tmp_path_factory.mktemp("web-labels")
    model = yaml.safe_load((conformance_dir / "model.yaml").read_text())
    model["tables"]["contact"]["label"] = "Customers"
    model["tables"]["account"]["label"] = "Companies"
    model["tables"]["contact"]["columns"]["tier"]["label"] = "Loyalty tier"
    model["tables"]["contact"]["columns"]["country"]["label"] = "Country of residence"
    model["measures"]["total_spend"]["label"] = "Total spend"
    (root / "model.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    ws = root / "ws"
    assert cli("--workspace", str(ws), "init", "--model", str(root / "model.yaml")).returncode == 0
    for f in sorted((conformance_dir / "data").glob("*.csv")):
        shutil.copy(f, root / f.name)
        assert cli("--workspace", str(ws), "load", f.stem, str(root / f.name)).returncode == 0
    with serving(ws) as srv:
        yield srv


@pytest.fixture()
def pg(browser, labelled):
    page = sign_in(browser, labelled)
    page.click("#new-segment")
    page.wait_for_selector("#builder-view:not([hidden])")
    yield page
    errors = page.errors
    page.context.close()
    assert errors == [], errors


def options(pg, selector: str) -> list[str]:
    return pg.eval_on_selector(selector, "s => [...s.options].map(o => o.textContent)")


def test_labels_from_the_model_replace_column_names(pg) -> None:
    assert "Customers" in options(pg, "#seg-audience")
    fields = options(pg, by_id(f"{G0}/field"))
    assert "Loyalty tier" in fields and "Total spend" in fields and "tier" not in fields
    assert "firstname" in fields  # no label: the name
    pg.select_option(by_id(f"{G0}/field"), value="a||tier")
    pg.select_option(by_id(f"{G0}/value"), value="Gold")
    pg.wait_for_selector("#preview table")
    assert "Loyalty tier" in pg.locator("#preview th").all_inner_texts()


def test_the_attribute_picker_is_grouped_by_table_and_searchable(pg) -> None:
    groups = pg.eval_on_selector(by_id(f"{G0}/field"), "s => [...s.querySelectorAll('optgroup')].map(g => g.label)")
    assert groups[0] == "Customers" and "Customers › account" in groups and "Measures" in groups
    pg.fill(by_id(f"{G0}/field-search"), "countr")
    found = options(pg, by_id(f"{G0}/field"))
    assert "Country of residence" in found and "Total spend" not in found and "firstname" not in found
    assert "Loyalty tier" in found  # the current choice stays shown
    pg.fill(by_id(f"{G0}/field-search"), "firstn")
    # One match left: it is chosen.
    pg.wait_for_function("(id) => document.getElementById(id).value === 'a||firstname'", arg=f"{G0}/field")


def test_text_values_are_suggested_from_the_data_but_never_for_pii(pg) -> None:
    pg.select_option(by_id(f"{G0}/field"), value="a||country")
    pg.click(by_id(f"{G0}/value"))
    pg.wait_for_function(
        "(id) => { const l = document.getElementById(document.getElementById(id).getAttribute('list')); return l && l.options.length > 0; }",
        arg=f"{G0}/value",
    )
    suggested = pg.eval_on_selector(
        by_id(f"{G0}/value"), "i => [...document.getElementById(i.getAttribute('list')).options].map(o => o.value)"
    )
    assert "UK" in suggested or "uk" in suggested
    pg.type(by_id(f"{G0}/value"), "F")
    pg.wait_for_function(
        "(id) => { const i = document.getElementById(id); const vals = [...document.getElementById(i.getAttribute('list')).options].map(o => o.value);"
        " return vals.length > 0 && vals.every(v => v.toLowerCase().startsWith('f')); }",
        arg=f"{G0}/value",
    )
    pg.select_option(by_id(f"{G0}/field"), value="a||email")
    assert pg.get_attribute(by_id(f"{G0}/value"), "list") is None


def test_a_new_text_condition_waits_for_its_value_instead_of_emptying_the_estimate(pg, labelled) -> None:
    pg.select_option(by_id(f"{G0}/field"), value="a||tier")
    pg.select_option(by_id(f"{G0}/value"), value="Gold")
    wait_estimate(pg, "2")
    pg.click(by_id("/groups/0/where/add-condition"))
    g1 = "/groups/0/where/all/1"
    pg.select_option(by_id(f"{g1}/field"), value="a||firstname")
    assert pg.input_value(by_id(f"{g1}/value")) == ""
    assert "left out of the estimate" in pg.inner_text(f'[data-pointer="{g1}"] .fresh-note')
    pg.wait_for_function("() => document.querySelector('#estimate-note').textContent.includes('once they have a value')")
    wait_estimate(pg, "2")  # not 0: the new condition has no value yet and is left out
    pg.fill("#seg-name", "waiting")
    pg.click("#save-draft")
    pg.wait_for_function("() => document.querySelector('#builder-problems').textContent.includes('no value yet')")
    pg.fill(by_id(f"{g1}/value"), "Ann")
    wait_estimate(pg, "1")
    assert pg.locator(f'[data-pointer="{g1}"] .fresh-note').count() == 0
    assert pg.inner_text("#estimate-note") == ""


def test_a_new_related_block_starts_from_the_busiest_relationship(pg) -> None:
    pg.click(by_id("/groups/0/where/add-related"))
    related = by_id("/groups/0/where/all/1/related")
    # interactions has the most rows of contact's one-to-many relationships (leads comes first in the model).
    assert pg.eval_on_selector(related, "s => s.value") == "interactions"
    assert pg.eval_on_selector(by_id("/groups/0/where/all/1/count-op"), "s => s.value") == "gte"


def test_problems_are_worded_for_people_and_stay_by_their_row(pg) -> None:
    pg.select_option(by_id(f"{G0}/field"), value="a||score")
    pg.select_option(by_id(f"{G0}/op"), value="between")
    pg.fill(by_id(f"{G0}/value-0"), "9")
    pg.fill(by_id(f"{G0}/value-1"), "1")
    problem = pg.wait_for_selector(f'[data-pointer="{G0}"] .problem', timeout=30_000)
    text = problem.inner_text()
    assert text and not any(ch in text for ch in '{}[]"'), text
    assert problem.get_attribute("data-where").startswith("/groups/0")
    shot(pg, "30-worded-problem")


def test_a_pii_restricted_user_is_offered_no_pii_attribute_and_no_pii_value(browser, labelled) -> None:
    with httpx.Client(base_url=labelled["base"]) as s:
        assert s.post("/api/auth/login", json={"username": "admin", "password": labelled["password"]}).status_code == 200
        r = s.post(
            "/api/users",
            json={"username": "rita", "password": "correct horse battery", "role": "marketer", "pii_restricted": True},
        )
        assert r.status_code == 201, r.text
    page = sign_in(browser, labelled, user="rita", password="correct horse battery")
    page.click("#new-segment")
    keys = page.eval_on_selector(by_id(f"{G0}/field"), "s => [...s.options].map(o => o.value)")
    assert "a||email" not in keys and "a||birthdate" not in keys and "a||country" in keys
    page.select_option(by_id(f"{G0}/field"), value="a||country")
    page.click(by_id(f"{G0}/value"))
    page.wait_for_function(
        "(id) => { const l = document.getElementById(document.getElementById(id).getAttribute('list')); return l && l.options.length > 0; }",
        arg=f"{G0}/value",
    )
    page.wait_for_selector("#preview table")
    assert "email" not in [h.lower() for h in page.locator("#preview th").all_inner_texts()]
    errors = page.errors
    page.context.close()
    assert errors == [], errors
