"""GET /api/model serves the builder's whole vocabulary; value suggestions for text columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmenta.interfaces.api.routers import model as model_router
from segmenta.model.operators import OPERATORS, vocabulary
from tests.api.conftest import Api, api, shared_api, template  # noqa: F401  (fixtures)


def test_model_serves_the_vocabulary_defined_in_python(shared_api: Api) -> None:  # noqa: F811
    model = shared_api.call("viewer", "GET", "/api/model").json()
    voc = model["vocabulary"]
    assert voc == vocabulary()
    assert voc["operators"]["text"] == list(OPERATORS[next(t for t in OPERATORS if t.value == "text")])
    assert voc["value_shapes"]["between"] == "range" and voc["value_shapes"]["in_last"] == "window"
    assert voc["value_shapes"]["is_true"] == "none" and voc["value_shapes"]["in"] == "list"
    assert voc["default_count"] == {"op": "gte", "value": 1}
    assert voc["aggregate_result_types"]["count_distinct"] == "integer"
    assert voc["link_labels"]["but_not"] == "BUT NOT"
    # Each table says how many rows it holds, so a new related block starts from the busiest one.
    assert model["tables"]["interaction"]["rows"] > 0


def test_row_counts_are_reused_until_a_load_or_for_a_few_minutes(
    api: Api,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The builder loads the model on every visit: the many-side tables are not counted every time."""
    first = api.call("viewer", "GET", "/api/model").json()["tables"]["interaction"]["rows"]
    assert first > 2
    two = tmp_path / "interaction.csv"
    two.write_text("interactionid,contactid,type,emailid,ts\n1,1,open,7,2026-07-29T12:00:00\n2,2,open,7,2026-07-29T12:00:00\n")
    api.service.ws.load("interaction", two)  # behind the service's back (as `segmenta load` in another process)
    assert api.call("viewer", "GET", "/api/model").json()["tables"]["interaction"]["rows"] == first  # reused
    monkeypatch.setattr(model_router, "ROW_COUNT_TTL_S", 0.0)  # ... until it is old
    assert api.call("viewer", "GET", "/api/model").json()["tables"]["interaction"]["rows"] == 2
    monkeypatch.setattr(model_router, "ROW_COUNT_TTL_S", 300.0)
    three = tmp_path / "upload.csv"
    three.write_text(two.read_text() + "3,3,open,7,2026-07-29T12:00:00\n")
    assert api.call("viewer", "GET", "/api/model").json()["tables"]["interaction"]["rows"] == 2
    with three.open("rb") as fh:
        loaded = api.call("admin", "POST", "/api/tables/interaction/load", files={"file": ("interaction.csv", fh, "text/csv")})
    assert loaded.status_code == 200, loaded.text
    assert api.call("viewer", "GET", "/api/model").json()["tables"]["interaction"]["rows"] == 3  # a load counts afresh


def test_text_values_most_frequent_first_with_a_prefix(shared_api: Api) -> None:  # noqa: F811
    r = shared_api.call("marketer", "GET", "/api/tables/interaction/columns/type/values", params={"limit": 50})
    assert r.status_code == 200, r.text
    values = r.json()["values"]
    counts = [v["count"] for v in values]
    assert counts == sorted(counts, reverse=True) and counts[0] > 1
    assert len({v["value"] for v in values}) == len(values)
    first = values[0]["value"]
    narrowed = shared_api.call(
        "marketer", "GET", "/api/tables/interaction/columns/type/values", params={"prefix": first[:3].upper()}
    )
    assert narrowed.status_code == 200
    got = narrowed.json()["values"]
    assert got and all(v["value"].lower().startswith(first[:3].lower()) for v in got)
    assert got[0] == values[0]


def test_a_prefix_is_a_value_not_sql(shared_api: Api) -> None:  # noqa: F811
    r = shared_api.call("marketer", "GET", "/api/tables/contact/columns/country/values", params={"prefix": "x' OR '1'='1"})
    assert r.status_code == 200 and r.json()["values"] == []
    r = shared_api.call("marketer", "GET", "/api/tables/contact/columns/country/values", params={"prefix": "%"})
    assert r.status_code == 200 and r.json()["values"] == []


def test_pii_columns_are_never_suggested(shared_api: Api) -> None:  # noqa: F811
    for who in ("admin", "marketer"):
        r = shared_api.call(who, "GET", "/api/tables/contact/columns/email/values")
        assert r.status_code == 403, (who, r.text)
        assert "PII" in r.text and "@" not in r.text


def test_a_restricted_user_cannot_tell_a_pii_column_from_an_unknown_one(shared_api: Api) -> None:  # noqa: F811
    pii = shared_api.call("restricted", "GET", "/api/tables/contact/columns/email/values")
    unknown = shared_api.call("restricted", "GET", "/api/tables/contact/columns/emial/values")
    assert pii.status_code == unknown.status_code == 404, (pii.text, unknown.text)
    assert "PII" not in pii.text and "@" not in pii.text
    assert pii.json()["error"]["problems"][0]["message"].startswith("table 'contact' has no column 'email'")
    # and no hint names the PII column to them
    assert "email" not in unknown.json()["error"]["problems"][0]["message"].replace("'emial'", "")


def test_bad_requests_say_what_is_wrong(shared_api: Api) -> None:  # noqa: F811
    r = shared_api.call("viewer", "GET", "/api/tables/contact/columns/score/values")
    assert r.status_code == 422 and "text columns" in r.text and "decimal" in r.text
    r = shared_api.call("viewer", "GET", "/api/tables/contact/columns/contry/values")
    assert r.status_code == 404 and "country" in r.text
    r = shared_api.call("viewer", "GET", "/api/tables/contact/columns/country/values", params={"limit": 51})
    assert r.status_code == 422 and "50" in r.text
    r = shared_api.call("viewer", "GET", "/api/tables/nope/columns/country/values")
    assert r.status_code == 404


def _rows(answer: dict) -> dict:
    return {r["key"]: r["values"] for r in answer["rows"]}


def test_lookup_shows_path_attributes_measures_and_latest_related_values(shared_api: Api) -> None:  # noqa: F811
    body = {
        "keys": [1, 2, 9999],
        "fields": [
            {"path": ["account"], "attribute": "industry"},
            {"measure": "total_spend"},
            {"related": "interactions", "attribute": "ts"},
        ],
    }
    r = shared_api.call("marketer", "POST", "/api/tables/contact/lookup", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["columns"] == ["account › industry", "total_spend", "last interaction ts"]
    rows = _rows(answer)
    # contact 1: account 1 (Retail), orders 800 + 900 + ...; contact 9999 does not exist.
    assert rows[1][0] == "Retail" and rows[2][0] == "Tech"
    assert rows[1][1] >= 1700 and rows[9999] == [None, 0, None]
    assert rows[2][2].startswith("2026-10-01")


def test_lookup_masks_pii_and_says_what_is_wrong(shared_api: Api) -> None:  # noqa: F811
    r = shared_api.call(
        "admin", "POST", "/api/tables/lead/lookup", json={"keys": [1], "fields": [{"path": ["contact"], "attribute": "email"}]}
    )
    assert r.status_code == 200, r.text
    assert all(v in (None, "***") for row in r.json()["rows"] for v in row["values"])
    bad = shared_api.call(
        "viewer",
        "POST",
        "/api/tables/contact/lookup",
        json={"keys": [1], "fields": [{"path": ["acount"], "attribute": "industry"}]},
    )
    assert bad.status_code == 422 and "/fields/0/path/0" in bad.text and "account" in bad.text
    bad = shared_api.call("viewer", "POST", "/api/tables/contact/lookup", json={"keys": ["x"], "fields": []})
    assert bad.status_code == 422 and "/keys/0" in bad.text
    bad = shared_api.call("viewer", "POST", "/api/tables/contact/lookup", json={"keys": [2**70], "fields": []})
    assert bad.status_code == 422 and "64-bit" in bad.text
    bad = shared_api.call("viewer", "POST", "/api/tables/contact/lookup", json={"keys": list(range(201)), "fields": []})
    assert bad.status_code == 422
