"""PII restriction, enforced by the server: a restricted user never sees a PII column
(email, birthdate in the conformance model) and cannot build a condition on one."""

from __future__ import annotations

import io
import json

from sqlalchemy import text

from tests.api.conftest import GOLD, Api

ANN_EMAIL = "ann@northwind.example"  # contact 1, Gold
ANN_BIRTHDATE = "1985-03-02"
BY_EMAIL = {"audience": "contact", "groups": [{"where": {"attribute": "email", "op": "eq", "value": ANN_EMAIL}}]}


def test_model_listing_omits_pii_columns(api: Api) -> None:
    full = api.call("marketer", "GET", "/api/model").json()["tables"]["contact"]["columns"]
    seen = api.call("restricted", "GET", "/api/model").json()
    assert full["email"]["pii"] is True and "birthdate" in full
    cols = seen["tables"]["contact"]["columns"]
    assert "email" not in cols and "birthdate" not in cols
    assert not any(c["pii"] for t in seen["tables"].values() for c in t["columns"].values())
    assert "tier" in cols and "donotemail" in cols


def test_table_rows_leave_pii_out_for_restricted_and_mask_it_for_others(api: Api) -> None:
    restricted = api.call("restricted", "GET", "/api/tables/contact/rows", params={"show_pii": "true"})
    assert restricted.status_code == 200
    assert (
        "email" not in restricted.json()["columns"] and ANN_EMAIL not in restricted.text and ANN_BIRTHDATE not in restricted.text
    )
    other = api.call("marketer", "GET", "/api/tables/contact/rows").json()
    assert other["rows"][0]["email"] == "***" and set(other["masked"]) == {"email", "birthdate"}
    shown = api.call("marketer", "GET", "/api/tables/contact/rows", params={"show_pii": "true"}).json()
    assert shown["rows"][0]["email"] == ANN_EMAIL and shown["masked"] == []
    asked = api.call("restricted", "GET", "/api/tables/contact/rows", params={"columns": "tier,email"})
    assert asked.status_code == 422 and asked.json()["error"]["problems"][0]["where"] == "/columns"


def test_preview_never_shows_pii_to_restricted(api: Api) -> None:
    default = api.call("restricted", "POST", "/api/definitions/preview", json={"definition": GOLD, "show_pii": True})
    assert default.status_code == 200
    assert "email" not in default.json()["columns"] and ANN_EMAIL not in default.text
    asked = api.call(
        "restricted", "POST", "/api/definitions/preview", json={"definition": GOLD, "columns": ["email"], "show_pii": True}
    )
    assert asked.status_code == 422
    assert asked.json()["error"]["problems"] == [
        {"where": "/columns", "message": "'contact' has no column 'email' (did you mean 'donotemail'?)"}
    ]
    unrestricted = api.call(
        "viewer", "POST", "/api/definitions/preview", json={"definition": GOLD, "columns": ["email"], "show_pii": True}
    )
    assert unrestricted.json()["rows"][0]["email"] == ANN_EMAIL


def test_members_and_export_leave_pii_out(api: Api) -> None:
    page = api.call("restricted", "GET", "/api/segments/Gold/members", params={"columns": "tier,country"})
    assert page.status_code == 200 and page.json()["keys"] == [1, 3]
    for path in ("/api/segments/Gold/members", "/api/segments/Gold/members.csv"):
        refused = api.call("restricted", "GET", path, params={"columns": "email", "show_pii": "true"})
        assert refused.status_code == 422, path
        assert ANN_EMAIL not in refused.text
    export = api.call("restricted", "GET", "/api/segments/Gold/members.csv", params={"columns": "tier"})
    assert export.text.splitlines() == ["contactid,tier", "1,Gold", "3,Gold"]
    plain = api.call("restricted", "GET", "/api/segments/Gold/members.csv")
    assert plain.text.splitlines() == ["contactid", "1", "3"]
    masked = api.call("marketer", "GET", "/api/segments/Gold/members.csv", params={"columns": "email"})
    assert masked.text.splitlines()[1] == "1,***"


def test_a_condition_on_pii_is_rejected_with_its_pointer(api: Api) -> None:
    definition = {
        "audience": "contact",
        "groups": [
            {"where": {"attribute": "tier", "op": "eq", "value": "Gold"}},
            {
                "link": "and_also",
                "where": {
                    "all": [{"attribute": "country", "op": "eq", "value": "UK"}, {"attribute": "email", "op": "is_not_empty"}]
                },
            },
        ],
    }
    for path in ("/api/definitions/estimate", "/api/definitions/preview", "/api/definitions/sql", "/api/definitions/evaluate"):
        response = api.call("restricted", "POST", path, json={"definition": definition})
        assert response.status_code == 422, path
        assert response.json()["error"]["problems"] == [
            {"where": "/groups/1/where/all/1", "message": "table 'contact' has no attribute 'email' (did you mean 'donotemail'?)"}
        ]
    assert api.call("marketer", "POST", "/api/definitions/estimate", json={"definition": definition}).json()["count"] == 1
    check = api.call("restricted", "POST", "/api/definitions/validate", json={"definition": definition}).json()
    assert check["ok"] is False and check["problems"][0]["where"] == "/groups/1/where/all/1"


def test_pii_is_unreachable_over_paths_and_related_records(api: Api) -> None:
    over_path = {
        "audience": "order",
        "groups": [{"where": {"path": ["contact"], "attribute": "birthdate", "op": "before", "value": "2000-01-01"}}],
    }
    related = {
        "audience": "contact",
        "groups": [
            {"where": {"related": "leads", "where": {"path": ["contact"], "attribute": "email", "op": "contains", "value": "@"}}}
        ],
    }
    for definition, where in ((over_path, "/groups/0/where"), (related, "/groups/0/where/where")):
        response = api.call("restricted", "POST", "/api/definitions/estimate", json={"definition": definition})
        assert response.status_code == 422
        assert response.json()["error"]["problems"][0]["where"] == where
        assert api.call("marketer", "POST", "/api/definitions/estimate", json={"definition": definition}).status_code == 200


def test_hints_never_name_a_pii_column(api: Api) -> None:
    typo = {"audience": "contact", "groups": [{"where": {"attribute": "birthdat", "op": "is_empty"}}]}
    assert "birthdate" in api.call("marketer", "POST", "/api/definitions/validate", json={"definition": typo}).text
    assert "birthdate" not in api.call("restricted", "POST", "/api/definitions/validate", json={"definition": typo}).text


def test_old_versions_redact_columns_no_longer_in_the_model(api: Api) -> None:
    """A version written when the model had other (perhaps PII) columns shows their values masked."""
    old = {
        "audience": "contact",
        "groups": [
            {
                "where": {
                    "all": [
                        {"attribute": "tier", "op": "eq", "value": "Gold"},
                        {"attribute": "phone", "op": "eq", "value": "+44 7700"},
                    ]
                }
            },
            {"link": "or", "where": {"path": ["employer"], "attribute": "name", "op": "eq", "value": "Acme secret"}},
            {"link": "or", "where": {"related": "tickets", "where": {"attribute": "body", "op": "contains", "value": "my ssn"}}},
            {"link": "or", "where": {"measure": "lifetime_value", "op": "gt", "value": 12345}},
        ],
    }
    gone = {"audience": "patient", "groups": [{"where": {"attribute": "diagnosis", "op": "eq", "value": "flu"}}]}
    with api.service.store.session() as s:
        s.execute(
            text("UPDATE segment_versions SET definition = :d WHERE segment_id = (SELECT id FROM segments WHERE name = 'Draft')"),
            {"d": json.dumps(old)},
        )
        s.execute(
            text("UPDATE segment_versions SET definition = :d WHERE segment_id = (SELECT id FROM segments WHERE name = 'Gold')"),
            {"d": json.dumps(gone)},
        )
        s.commit()
    seen = api.call("restricted", "GET", "/api/segments/Draft/versions").json()[0]["definition"]
    assert seen["groups"][0]["where"]["all"][0]["value"] == "Gold"  # a known, non-PII column stays
    assert [seen["groups"][0]["where"]["all"][1]["value"]] + [g["where"].get("value") for g in seen["groups"][1:]] == [
        "***",
        "***",
        None,
        "***",
    ]
    assert seen["groups"][2]["where"]["where"]["value"] == "***"
    for path in ("/api/segments/Draft", "/api/segments/Draft/versions/1", "/api/segments/Gold", "/api/segments/Gold/versions"):
        shown = api.call("restricted", "GET", path).text
        for secret in ("+44 7700", "Acme secret", "my ssn", "12345", "flu"):
            assert secret not in shown, (path, secret)
    assert "my ssn" in api.call("marketer", "GET", "/api/segments/Draft").text


def test_saved_definitions_show_pii_values_masked(api: Api) -> None:
    assert api.call("admin", "POST", "/api/segments", json={"definition": BY_EMAIL, "name": "Ann"}).status_code == 201
    for path in ("/api/segments/Ann", "/api/segments/Ann/versions", "/api/segments/Ann/versions/1"):
        seen = api.call("restricted", "GET", path)
        assert seen.status_code == 200 and ANN_EMAIL not in seen.text, path
    shown = api.call("restricted", "GET", "/api/segments/Ann").json()["definition"]
    assert shown["groups"][0]["where"]["value"] == "***"
    assert api.call("admin", "GET", "/api/segments/Ann").json()["definition"]["groups"][0]["where"]["value"] == ANN_EMAIL
    # what the restricted user sees cannot be saved back: the PII column does not exist for them
    edit = api.call("restricted", "PUT", "/api/segments/Ann", json={"definition": shown})
    assert edit.status_code == 422 and "has no attribute 'email'" in edit.text
    assert api.call("admin", "GET", "/api/segments/Ann").json()["version"] == 1


def test_restricted_creates_are_rejected_and_change_nothing(api: Api) -> None:
    response = api.call("restricted", "POST", "/api/segments", json={"definition": BY_EMAIL, "name": "Sneaky"})
    assert response.status_code == 422 and ANN_EMAIL not in response.text
    assert "Sneaky" not in [s["name"] for s in api.call("admin", "GET", "/api/segments").json()]


def test_import_not_found_rows_are_not_offered_to_restricted(api: Api) -> None:
    csv_bytes = b"email\nann@northwind.example\nstranger@example.com\n"
    mine = api.call(
        "restricted", "POST", "/api/segments/List/import-csv", files={"file": ("in.csv", io.BytesIO(csv_bytes), "text/csv")}
    )
    assert mine.status_code == 403  # matching on the PII email would tell them whose address exists
    assert "stranger@example.com" not in mine.text and "ann@northwind.example" not in mine.text
    assert api.call("admin", "GET", "/api/segments/List").json()["size"] == 0
    theirs = api.call(
        "marketer", "POST", "/api/segments/List/import-csv", files={"file": ("in.csv", io.BytesIO(csv_bytes), "text/csv")}
    )
    url = theirs.json()["not_found_url"]
    assert api.call("marketer", "GET", url).text.splitlines() == ["email", "stranger@example.com"]
    assert api.call("restricted", "GET", url).status_code == 403
    assert api.call("viewer", "GET", url).status_code == 403
    assert api.call("admin", "GET", url).status_code == 200


def test_load_errors_name_the_upload_and_hide_pii_values_from_restricted(api: Api) -> None:
    api.call("admin", "POST", "/api/users", json={"username": "opal", "role": "operator", "pii_restricted": True})
    token = api.call("admin", "POST", "/api/users/opal/tokens").json()["token"]
    header = "contactid,firstname,lastname,email,jobtitle,tier,country,birthdate,createdon,donotemail,interests,score,parentaccountid,statecode,fullname"
    bad = f"{header}\n1,A,B,a@b.example,x,Gold,UK,secret-birthday,,,,,,0,\n".encode()

    def load(headers: dict[str, str]) -> dict:
        files = {"file": ("people.csv", io.BytesIO(bad), "text/csv")}
        response = api.client.post("/api/tables/contact/load", files=files, headers=headers)
        assert response.status_code == 422
        return response.json()["error"]

    hidden = load({"Authorization": f"Bearer {token}"})
    assert "secret-birthday" not in str(hidden) and "'birthdate'" in hidden["problems"][0]["message"]
    assert hidden["problems"][0]["where"].startswith("people.csv") and "/tmp" not in str(hidden)
    shown = load(api.auth("admin"))
    assert "secret-birthday" in shown["problems"][0]["message"]
    assert api.call("admin", "GET", "/api/tables/contact/rows").json()["total"] > 1  # nothing was loaded
