"""Requests that used to answer 500: out-of-range numbers, dates, offsets and keys are a 4xx with a message."""

from __future__ import annotations

import pytest

from tests.api.conftest import GOLD, Api


def _on(where: dict) -> dict:
    return {"audience": "contact", "groups": [{"where": where}]}


@pytest.mark.parametrize(
    "where",
    [
        {"attribute": "createdon", "op": "after", "value": "0001-01-01T00:00:00+14:00"},
        {"attribute": "createdon", "op": "before", "value": "9999-12-31T23:59:59-14:00"},
        {"attribute": "createdon", "op": "between", "value": ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]},
    ],
    ids=["year-1-east", "year-9999-west", "between-extremes"],
)
def test_datetimes_at_the_ends_of_the_calendar_are_a_422(shared_api: Api, where: dict) -> None:
    for route in ("estimate", "preview", "evaluate", "sql", "validate"):
        answer = shared_api.call("viewer", "POST", f"/api/definitions/{route}", json={"definition": _on(where)})
        assert answer.status_code in (200, 422), (route, answer.status_code, answer.text)
        if answer.status_code == 422:
            assert "range" in answer.text or "date" in answer.text, answer.text
        else:
            assert route == "validate" or "count" in answer.json() or "sql" in answer.json()


def test_huge_offsets_and_limits_are_a_422_naming_the_bound(shared_api: Api) -> None:
    for params in ({"offset": 10**30}, {"limit": 10**30}, {"offset": -1}):
        answer = shared_api.call("viewer", "GET", "/api/segments/Gold/members", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert list(params)[0] in answer.json()["error"]["problems"][0]["where"]
    far = shared_api.call("viewer", "GET", "/api/segments/Gold/members", params={"offset": 2**62})
    assert far.status_code == 200 and far.json()["keys"] == []
    assert shared_api.call("viewer", "GET", f"/api/segments/Gold/versions/{10**30}").status_code == 404


def test_a_huge_table_rows_offset_is_a_422_naming_it(shared_api: Api) -> None:
    answer = shared_api.call("viewer", "GET", "/api/tables/contact/rows", params={"offset": 10**30})
    assert answer.status_code == 422, answer.text
    assert "offset" in answer.json()["error"]["problems"][0]["where"]


def test_a_datetime_before_year_one_in_utc_is_refused_at_its_pointer(shared_api: Api) -> None:
    where = {"attribute": "createdon", "op": "after", "value": "0001-01-01T00:00:00+14:00"}
    checked = shared_api.call("viewer", "POST", "/api/definitions/validate", json={"definition": _on(where)})
    assert checked.status_code == 200 and checked.json()["ok"] is False, checked.text
    assert checked.json()["problems"][0]["where"] == "/groups/0/where"
    answer = shared_api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": _on(where)})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["problems"][0]["where"] == "/groups/0/where"


@pytest.mark.parametrize("count", [1, 3000], ids=["one-key", "staged-keys"])
def test_keys_beyond_64_bits_are_a_422_naming_them(api: Api, count: int) -> None:
    keys = [10**30 + i for i in range(count)]
    for action in ("add", "remove"):
        answer = api.call("marketer", "POST", f"/api/segments/List/members/{action}", json={"keys": [1, *keys]})
        assert answer.status_code == 422, answer.text
        assert str(10**30) in answer.text and "64-bit" in answer.text
    assert api.call("viewer", "GET", "/api/segments/List").json()["size"] == 0


def test_a_column_asked_for_twice_is_shown_once(shared_api: Api) -> None:
    body = {"definition": GOLD, "columns": ["tier"] * 500}
    answer = shared_api.call("viewer", "POST", "/api/definitions/preview", json=body)
    assert answer.status_code == 200 and answer.json()["columns"] == ["contactid", "tier"]
    page = shared_api.call("viewer", "GET", "/api/segments/Gold/members", params={"columns": "tier,tier,country"})
    assert page.json()["columns"] == ["contactid", "tier", "country"]


def test_bad_definition_shapes_are_a_422_not_a_500(shared_api: Api) -> None:
    for definition in (None, [], 7, "gold.json", {"audience": 1, "groups": "x"}):
        answer = shared_api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": definition})
        assert answer.status_code == 422, (definition, answer.text)
    for as_of in ("99999-01-01", "yesterday", "2026-13-01"):
        answer = shared_api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": GOLD, "as_of": as_of})
        assert answer.status_code == 422 and as_of in answer.text


def test_evaluate_with_a_limit_counts_all_and_lists_the_first(shared_api: Api) -> None:
    body = {"definition": GOLD, "limit": 1, "as_of": "2026-10-27T12:00:00"}
    first = shared_api.call("viewer", "POST", "/api/definitions/evaluate", json=body).json()
    assert (first["count"], first["keys"], first["as_of"]) == (2, [1], "2026-10-27T12:00:00")
    every = shared_api.call("viewer", "POST", "/api/definitions/evaluate", json={**body, "limit": None}).json()
    assert (every["count"], every["keys"]) == (2, [1, 3])
    huge = shared_api.call("viewer", "POST", "/api/definitions/evaluate", json={**body, "limit": 10**30})
    assert huge.status_code == 422 and "/limit" in huge.text
