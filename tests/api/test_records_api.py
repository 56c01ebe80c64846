"""Record changes over HTTP: POST /api/tables/{table}/records (upsert) and .../records/delete.

Bodies are JSON arrays, NDJSON or CSV and are applied as ``segmenta records upsert|delete``
applies that file: the same counts, all or nothing (422 naming the row and column), change ids,
the live segments refreshed. Admins and operators may change records; PII-restricted users may
not write PII columns (refused as unknown columns) nor touch a table keyed by PII, and no answer
ever echoes a PII value.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

import segmenta
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import PASSWORD, Api, Template

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}


def members(api: Api, name: str = "Gold") -> list[Any]:
    answer = api.call("admin", "GET", f"/api/segments/{name}/members", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["keys"])


def row(api: Api, table: str, key: int, column: str) -> Any:
    answer = api.call("admin", "GET", f"/api/tables/{table}/rows", params={"limit": 1000, "show_pii": "true"})
    key_col = answer.json()["columns"][0]
    found = [r for r in answer.json()["rows"] if r[key_col] == key]
    return found[0][column] if found else None


def restricted_operator(api: Api) -> dict[str, str]:
    api.service.users.create_user("ora", password=PASSWORD, role="operator", pii_restricted=True)
    return {"Authorization": f"Bearer {api.service.users.create_token('ora')}"}


def test_an_upsert_as_json_applies_and_refreshes_the_segments_that_read_it(api: Api) -> None:
    before = members(api)
    assert 2 not in before
    answer = api.call(
        "operator",
        "POST",
        "/api/tables/contact/records",
        json=[{"contactid": 2, "tier": "Gold"}, {"contactid": 900, "tier": "Gold", "statecode": 0, "country": "UK"}],
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["table"], body["inserted"], body["updated"], body["deleted"], body["skipped"]) == ("contact", 1, 1, 0, 0)
    assert body["refreshed"] == ["Gold"] and body["failed"] == []
    assert members(api) == sorted([*before, 2, 900])
    assert row(api, "contact", 2, "country") == "uk"  # a partial update keeps the columns it did not give


def test_ndjson_and_csv_bodies_and_a_delete_answer_the_cli_counts(api: Api) -> None:
    ndjson = '{"contactid": 2, "tier": "Gold", "_change_id": "n-1"}\n\n{"contactid": 3, "tier": "Bronze"}\n'
    answer = api.call("admin", "POST", "/api/tables/contact/records", content=ndjson, headers=NDJSON)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["updated"], answer.json()["inserted"]) == (2, 0)
    again = api.call("admin", "POST", "/api/tables/contact/records", content=ndjson.splitlines()[0], headers=NDJSON)
    assert (again.json()["skipped"], again.json()["updated"], again.json()["refreshed"]) == (1, 0, [])
    csv_body = "contactid,tier\n4,Gold\n"
    answer = api.call("admin", "POST", "/api/tables/contact/records", content=csv_body, headers=CSV)
    assert answer.status_code == 200 and answer.json()["updated"] == 1
    assert {2, 4} <= set(members(api)) and 3 not in members(api)
    gone = api.call("admin", "POST", "/api/tables/contact/records/delete", json=[{"contactid": 2}, {"contactid": 12345}])
    assert gone.status_code == 200, gone.text
    assert (gone.json()["deleted"], gone.json()["unknown"]) == (1, 1)
    assert 2 not in members(api) and row(api, "contact", 2, "tier") is None


def test_a_bad_row_is_a_422_naming_row_and_column_and_nothing_is_applied(api: Api) -> None:
    before = members(api)
    answer = api.call(
        "admin",
        "POST",
        "/api/tables/contact/records",
        json=[{"contactid": 2, "tier": "Gold"}, {"contactid": 3, "statecode": "x"}],
    )
    assert answer.status_code == 422, answer.text
    problems = answer.json()["error"]["problems"]
    assert any("row 2" in p["where"] and "'statecode'" in p["message"] for p in problems), problems
    assert members(api) == before and row(api, "contact", 2, "tier") == "Silver"
    ndjson = api.call(
        "admin", "POST", "/api/tables/contact/records", content='{"contactid": 2}\n{"contactid": "b"}\n', headers=NDJSON
    )
    assert ndjson.status_code == 422 and "row 2 (line 2)" in ndjson.json()["error"]["problems"][0]["where"]
    for bad, where in (('{"contactid": 2}', "body"), ("[1, 2", "body: line 1")):
        refused = api.call(
            "admin", "POST", "/api/tables/contact/records", content=bad, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 422 and refused.json()["error"]["problems"][0]["where"] == where
    unknown = api.call("admin", "POST", "/api/tables/nosuch/records", json=[{"id": 1}])
    assert unknown.status_code == 404


@pytest.mark.parametrize("who", ["marketer", "viewer", "restricted"])
def test_only_admins_and_operators_change_records(shared_api: Api, who: str) -> None:
    for path in ("/api/tables/contact/records", "/api/tables/contact/records/delete"):
        answer = shared_api.call(who, "POST", path, json=[{"contactid": 2, "tier": "Gold"}])
        assert answer.status_code == 403, answer.text
    assert shared_api.call(None, "POST", "/api/tables/contact/records", json=[]).status_code == 401


def test_a_restricted_user_may_not_write_pii_columns_and_gets_no_hint_of_them(api: Api) -> None:
    ora = restricted_operator(api)
    for column in ("email", "emial", "birthdat"):
        answer = api.client.post("/api/tables/contact/records", json=[{"contactid": 2, column: "1990-01-01"}], headers=ora)
        assert answer.status_code == 422, answer.text
        text = json.dumps(answer.json())
        assert f"column {column!r} is not an attribute" in text
        assert "'email'" not in text.replace(f"{column!r}", "") and "birthdate" not in text
    csv_body = "contactid,email\n2,x@example.com\n"
    assert api.client.post("/api/tables/contact/records", content=csv_body, headers={**ora, **CSV}).status_code == 422
    assert row(api, "contact", 2, "email") == "BOB@Contoso.example"
    fine = api.client.post("/api/tables/contact/records", json=[{"contactid": 2, "tier": "Gold"}], headers=ora)
    assert fine.status_code == 200 and fine.json()["updated"] == 1


def test_a_pii_value_is_never_echoed(api: Api) -> None:
    secret = "born-on-SECRET-7431"
    answer = api.call("admin", "POST", "/api/tables/contact/records", json=[{"contactid": 2, "birthdate": secret}])
    assert answer.status_code == 422
    assert secret not in answer.text and "'birthdate'" in answer.text and "row 1" in answer.text
    plain = api.call("admin", "POST", "/api/tables/contact/records", json=[{"contactid": 2, "score": "lots"}])
    assert plain.status_code == 422 and "lots" in plain.text  # a value that is not PII is named, as the CLI does


def test_a_table_keyed_by_pii_is_refused_to_restricted_users(tmp_path: Path) -> None:
    model = {
        "tables": {"person": {"key": "email", "columns": {"email": {"type": "text", "pii": True}, "tier": {"type": "text"}}}}
    }
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    (tmp_path / "person.csv").write_text("email,tier\nann@x.example,Gold\n")
    ws = segmenta.Workspace.init(tmp_path / "ws", model=tmp_path / "model.yaml")
    ws.load("person", tmp_path / "person.csv")
    ws.close()
    service = Service(tmp_path / "ws")
    service.users.create_user("ora", password=PASSWORD, role="operator", pii_restricted=True)
    ora = {"Authorization": f"Bearer {service.users.create_token('ora')}"}
    with TestClient(create_app(service=service)) as c:
        for path in ("/api/tables/person/records", "/api/tables/person/records/delete"):
            answer = c.post(path, json=[{"email": "ann@x.example"}], headers=ora)
            assert answer.status_code == 403, answer.text
            assert "ann@x.example" not in answer.text


def test_a_body_over_max_body_bytes_is_413_and_nothing_is_applied(template: Template, tmp_path: Path) -> None:
    path = tmp_path / "ws"
    shutil.copytree(template.path, path)
    config = yaml.safe_load((path / "segmenta.yaml").read_text()) or {}
    config["service"] = {**(config.get("service") or {}), "max_body_bytes": 2048}
    (path / "segmenta.yaml").write_text(yaml.safe_dump(config))
    service = Service(path)
    auth = {"Authorization": f"Bearer {template.tokens['admin']}"}
    rows = [{"contactid": 2, "tier": "Gold"}] + [{"contactid": 10_000 + i, "tier": "Gold"} for i in range(200)]
    with TestClient(create_app(service=service)) as c:
        answer = c.post("/api/tables/contact/records", json=rows, headers=auth)
        assert answer.status_code == 413 and "service.max_body_bytes" in answer.text
        streamed = c.post("/api/tables/contact/records", content=iter([json.dumps(rows).encode()]), headers={**auth, **NDJSON})
        assert streamed.status_code == 413
        after = c.get("/api/tables/contact/rows", params={"limit": 1000}, headers=auth).json()
        assert after["total"] == 8 and [r["tier"] for r in after["rows"] if r["contactid"] == 2] == ["Silver"]
