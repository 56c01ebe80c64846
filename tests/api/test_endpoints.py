"""What each endpoint does: the CLI's behaviour over HTTP, and errors in one shape with the CLI's pointers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from segmenta.errors import (
    Conflict,
    DataError,
    DefinitionError,
    EngineError,
    NotFound,
    PermissionDenied,
    RejectedInput,
    Unauthenticated,
)
from segmenta.interfaces.api.errors import status_of
from segmenta.model.validate import parse_definition
from tests.api.conftest import GOLD, UK, Api


def _conformance_cases(conformance_dir: Path) -> list[tuple[str, Any, list[Any]]]:
    expected = json.loads((conformance_dir / "expected.json").read_text())
    return [
        (name, json.loads((conformance_dir / "segments" / f"{name}.json").read_text()), keys)
        for name, keys in expected["members"].items()
    ]


def test_estimate_and_evaluate_match_the_conformance_set(api: Api, conformance_dir: Path) -> None:
    as_of = json.loads((conformance_dir / "expected.json").read_text())["as_of"]
    for name, definition, keys in _conformance_cases(conformance_dir):
        estimate = api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": definition, "as_of": as_of}).json()
        assert estimate["count"] == len(keys), name
        assert estimate["elapsed_ms"] >= 0
        evaluated = api.call(
            "viewer", "POST", "/api/definitions/evaluate", json={"definition": definition, "as_of": as_of}
        ).json()
        assert evaluated["keys"] == keys, name


def test_sql_renders_any_dialect_and_names_a_bad_one(api: Api) -> None:
    spark = api.call("viewer", "POST", "/api/definitions/sql", json={"definition": GOLD, "dialect": "spark"}).json()
    assert spark["dialect"] == "spark" and "`contact`" in spark["sql"]
    bad = api.call("viewer", "POST", "/api/definitions/sql", json={"definition": GOLD, "dialect": "sparc"})
    assert bad.status_code == 422 and "did you mean 'spark'" in bad.json()["error"]["message"]


def test_definition_errors_carry_the_cli_pointers(api: Api) -> None:
    bad = {
        "audience": "contact",
        "groups": [
            {"where": {"attribute": "jobtitel", "op": "eq", "value": "x"}},
            {"where": {"attribute": "tier", "op": "gt", "value": 1}},
        ],
    }
    with pytest.raises(DefinitionError) as cli:
        parse_definition(bad, api.service.model)
    response = api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": bad})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "DefinitionError"
    assert [f"{p['where']}: {p['message']}" for p in error["problems"]] == [str(p) for p in cli.value.problems]
    assert error["message"] == str(cli.value)
    check = api.call("viewer", "POST", "/api/definitions/validate", json={"definition": bad}).json()
    assert check == {"ok": False, "problems": error["problems"]}
    assert api.call("viewer", "POST", "/api/definitions/validate", json={"definition": GOLD}).json() == {
        "ok": True,
        "problems": [],
    }


def test_a_definition_is_never_read_from_a_file_path(api: Api) -> None:
    response = api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": "/etc/passwd"})
    assert response.status_code == 422 and "root:" not in response.text
    saved = api.call("marketer", "POST", "/api/segments", json={"definition": "/etc/passwd", "name": "x"})
    assert saved.status_code == 422 and saved.json()["error"]["problems"][0]["where"] == "/definition"


def test_malformed_bodies_and_unknown_routes_answer_in_the_same_shape(api: Api) -> None:
    missing = api.call("viewer", "POST", "/api/definitions/estimate", json={"definiton": GOLD})
    assert missing.status_code == 422
    assert {p["where"] for p in missing.json()["error"]["problems"]} == {"/definition", "/definiton"}
    broken = api.call(
        "viewer", "POST", "/api/definitions/estimate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["error"]["type"] == "RejectedInput"
    nowhere = api.call("viewer", "GET", "/api/nowhere")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["type"] == "NotFound"


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (Unauthenticated("x"), 401),
        (PermissionDenied("x"), 403),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (DefinitionError("x"), 422),
        (DataError("x"), 422),
        (RejectedInput("x"), 422),
        (EngineError("x", sql="SELECT 1"), 500),
    ],
)
def test_exception_classes_map_to_http_codes(exc: Exception, status: int) -> None:
    assert status_of(exc)[0] == status


def test_a_segment_through_its_whole_life(api: Api) -> None:
    create = api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "UK"})
    assert create.status_code == 201 and create.json()["status"] == "draft"
    assert api.call("marketer", "GET", "/api/segments/UK").json()["definition"] == UK
    published = api.call("marketer", "POST", "/api/segments/UK/publish").json()
    assert (published["status"], published["refresh"]["entered"]) == ("live", published["size"])
    size = published["size"]
    members = api.call("viewer", "GET", "/api/segments/UK/members", params={"limit": 1, "offset": 1}).json()
    assert members["total"] == size and len(members["keys"]) == 1
    export = api.call("viewer", "GET", "/api/segments/UK/members.csv")
    assert export.headers["content-type"].startswith("text/csv") and len(export.text.splitlines()) == size + 1
    edited = api.call("marketer", "PUT", "/api/segments/UK", json={"definition": GOLD}).json()
    assert (edited["version"], edited["draft_version"], edited["size"]) == (2, 2, size)  # a draft: members unchanged
    assert [v["version"] for v in api.call("viewer", "GET", "/api/segments/UK/versions").json()] == [1, 2]
    assert api.call("viewer", "GET", "/api/segments/UK/versions/3").status_code == 404
    runs = api.call("viewer", "GET", "/api/segments/UK/history").json()
    assert [r["trigger"] for r in runs] == ["publish"]  # edit never re-evaluates (contract 5.1)
    record = api.call("viewer", "GET", "/api/segments/UK/history", params={"record": "1"}).json()
    assert [r["change"] for r in record] == ["entered"]
    republished = api.call("marketer", "POST", "/api/segments/UK/publish").json()
    assert (republished["live_version"], republished["size"]) == (2, 2)
    assert api.call("operator", "POST", "/api/segments/UK/refresh").json()["refresh"]["entered"] == 0
    assert api.call("operator", "POST", "/api/segments/UK/stop").json()["status"] == "stopped"
    assert api.call("operator", "POST", "/api/segments/UK/stop").status_code == 409
    assert api.call("operator", "POST", "/api/segments/UK/refresh").status_code == 409
    assert api.call("operator", "POST", "/api/segments/UK/activate", json={"status_reason": "ready"}).json()["status"] == "live"
    assert api.call("operator", "POST", "/api/segments/UK/activate", json={"status_reason": "later"}).status_code == 422
    assert api.call("marketer", "POST", "/api/segments/UK/rename", json={"new_name": "Gold"}).status_code == 409
    assert api.call("marketer", "POST", "/api/segments/UK/rename", json={"new_name": "Gold UK"}).json()["name"] == "Gold UK"
    assert api.call("operator", "POST", "/api/segments/Gold UK/stop").status_code == 200
    assert api.call("marketer", "DELETE", "/api/segments/Gold UK").json()["deleted"] == "Gold UK"
    assert api.call("viewer", "GET", "/api/segments/Gold UK").status_code == 404
    assert "Gold UK" in [s["name"] for s in api.call("viewer", "GET", "/api/segments", params={"deleted": "true"}).json()]
    assert api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "Gold UK"}).status_code == 409
    assert api.call("marketer", "POST", "/api/segments/Gold UK/restore").json()["name"] == "Gold UK"


def test_unknown_segments_are_404_with_a_hint(api: Api) -> None:
    response = api.call("viewer", "GET", "/api/segments/Gol")
    assert response.status_code == 404
    assert response.json()["error"]["problems"] == [
        {"where": "Gol", "message": "no saved segment has this name (did you mean 'Gold'?)"}
    ]


def test_static_lists_take_keys_and_csv_imports(api: Api) -> None:
    created = api.call("marketer", "POST", "/api/segments", json={"list": True, "audience": "contact", "name": "VIP"})
    assert created.status_code == 201 and created.json()["status"] == "live"
    assert api.call("marketer", "POST", "/api/segments/VIP/members/add", json={"keys": [5, 2, 2]}).json()["size"] == 2
    assert api.call("marketer", "POST", "/api/segments/VIP/members/remove", json={"keys": [5]}).json()["size"] == 1
    bad = api.call("marketer", "POST", "/api/segments/VIP/members/add", json={"keys": ["x1"]})
    assert bad.status_code == 422 and bad.json()["error"]["problems"][0]["where"] == "x1"
    csv_file = io.BytesIO(b"Email,name\nANN@northwind.example ,Ann\n,nobody\nann@northwind.example,again\n")
    result = api.call(
        "marketer", "POST", "/api/segments/VIP/import-csv", files={"file": ("list.csv", csv_file, "text/csv")}
    ).json()
    assert {k: result[k] for k in ("read", "found", "not_found", "duplicates", "members")} == {
        "read": 3,
        "found": 2,
        "not_found": 1,
        "duplicates": 1,
        "members": 2,
    }
    assert api.call("marketer", "GET", result["not_found_url"]).text.splitlines() == ["Email,name", ",nobody"]
    not_a_list = api.call(
        "marketer", "POST", "/api/segments/Gold/import-csv", files={"file": ("l.csv", io.BytesIO(b"email\n"), "text/csv")}
    )
    assert not_a_list.status_code == 422 and "static list" in not_a_list.text
    assert api.call("marketer", "GET", "/api/imports/nope/not-found.csv").status_code == 404


def test_table_load_replaces_rows_or_rejects_the_file_whole(api: Api) -> None:
    good = b"accountid,name,industry,employees,revenue,country\n7,Acme,Tech,5,1.5,FR\n"
    loaded = api.call(
        "operator", "POST", "/api/tables/account/load", files={"file": ("account.csv", io.BytesIO(good), "text/csv")}
    )
    assert loaded.json() == {"table": "account", "rows": 1}
    assert api.call("viewer", "GET", "/api/tables/account/rows").json()["rows"][0]["name"] == "Acme"
    bad = b"accountid,name,industry,employees,revenue,country\n8,Bad,Space,5,1.5,FR\n"
    refused = api.call(
        "operator", "POST", "/api/tables/account/load", files={"file": ("account.csv", io.BytesIO(bad), "text/csv")}
    )
    assert refused.status_code == 422 and refused.json()["error"]["type"] == "DataError"
    assert api.call("viewer", "GET", "/api/tables/account/rows").json()["total"] == 1
    assert api.call("viewer", "GET", "/api/tables/acount/rows").status_code == 404


def test_settings_and_the_worker(api: Api) -> None:
    configured = api.call("operator", "PATCH", "/api/segments/Gold/settings", json={"refresh_minutes": 60})
    assert configured.json()["settings"] == {"refresh_minutes": 60}
    assert api.call("operator", "PATCH", "/api/segments/Gold/settings", json={"colour": "red"}).status_code == 422
    report = api.call("operator", "POST", "/api/worker/run").json()
    assert report == {"refreshed": [], "expired": [], "failed": [], "skipped": []}


def test_model_listing_has_what_the_builder_needs(api: Api) -> None:
    model = api.call("viewer", "GET", "/api/model").json()
    contact = model["tables"]["contact"]
    assert contact["key"] == "contactid"
    assert contact["columns"]["tier"] == {
        "type": "choice",
        "choices": ["Gold", "Silver", "Bronze"],
        "pii": False,
        "calculated": False,
        "label": "tier",
        "description": None,
    }
    assert {"name": "account", "table": "account"} in contact["paths"]
    assert {"name": "orders", "table": "order"} in contact["related"]
    assert contact["measures"]["total_spend"] == {
        "related": "orders",
        "fn": "sum",
        "attribute": "amount",
        "result_type": "decimal",
        "description": None,
        "label": "total_spend",
    }
    assert "contains_any" in contact["operators"]["choices"] and "in_last" in model["operators"]["datetime"]
    assert model["count_operators"][0] == "eq"
