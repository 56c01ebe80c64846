"""``/api/assignment``: the CLI's commands over REST, with roles (reads for all; edits for admin and marketer)."""

from __future__ import annotations

from tests.api.conftest import Api

UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
GOLD = {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]}
EMAIL = {"audience": "contact", "groups": [{"where": {"attribute": "email", "op": "ends_with", "value": ".example"}}]}


def test_create_activate_reorder_simulate_and_show_over_rest(api: Api) -> None:
    r = api.call("marketer", "POST", "/api/assignment/segments", json={"definition": UK, "name": "uk"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "draft" and r.json()["priority"] == 1
    assert api.call("admin", "POST", "/api/assignment/segments", json={"definition": GOLD, "name": "gold"}).status_code == 201
    sim = api.call("viewer", "GET", "/api/assignment/segments/gold/simulate")
    assert sim.status_code == 200 and sim.json()["count"] == len(sim.json()["keys"]) > 0
    assert api.call("marketer", "POST", "/api/assignment/segments/gold/activate").status_code == 200
    gold = sim.json()["keys"][0]
    assert api.call("viewer", "GET", f"/api/assignment/tables/contact/records/{gold}").json()["segment"] == "gold"
    r = api.call("marketer", "PUT", "/api/assignment/segments/gold/priority", json={"priority": 1})
    assert r.status_code == 200 and r.json()["priority"] == 1
    rows = api.call("viewer", "GET", "/api/assignment/tables/contact/segments").json()
    assert [(x["name"], x["priority"], x["status"]) for x in rows] == [
        ("gold", 1, "active"),
        ("uk", 2, "draft"),
        ("default", 3, "active"),
    ]
    assert sum(x["size"] for x in rows) > 0
    assert api.call("marketer", "POST", "/api/assignment/segments/gold/deactivate").status_code == 200
    assert api.call("viewer", "GET", f"/api/assignment/tables/contact/records/{gold}").json()["segment"] == "default"


def test_roles_and_errors(api: Api) -> None:
    body = {"definition": UK, "name": "uk"}
    assert api.call("viewer", "POST", "/api/assignment/segments", json=body).status_code == 403
    assert api.call("operator", "POST", "/api/assignment/segments", json=body).status_code == 403
    assert api.call(None, "GET", "/api/assignment/tables/contact/segments").status_code == 401
    assert api.call("admin", "POST", "/api/assignment/segments", json=body).status_code == 201
    assert api.call("admin", "POST", "/api/assignment/segments", json=body).status_code == 409
    assert api.call("viewer", "POST", "/api/assignment/segments/uk/activate").status_code == 403
    assert api.call("admin", "GET", "/api/assignment/tables/nope/segments").status_code == 404
    assert api.call("admin", "GET", "/api/assignment/segments/nope/simulate").status_code == 404
    assert api.call("admin", "PUT", "/api/assignment/segments/uk/priority", json={"priority": 5}).status_code == 422
    assert api.call("admin", "GET", "/api/assignment/tables/contact/records/" + "9" * 40).status_code == 422
    eleven = {"audience": "contact", "groups": [{"where": {"all": [UK["groups"][0]["where"]] * 11}}]}
    r = api.call("admin", "POST", "/api/assignment/segments", json={"definition": eleven, "name": "big"})
    assert r.status_code == 422 and "at most 10 conditions" in r.text


def test_a_pii_restricted_user_cannot_route_by_a_pii_column(api: Api) -> None:
    r = api.call("restricted", "POST", "/api/assignment/segments", json={"definition": EMAIL, "name": "mail"})
    assert r.status_code == 422
    assert api.call("admin", "GET", "/api/assignment/tables/contact/segments").json()[0]["name"] == "default"


def test_rules_queue_and_sellers_over_rest(api: Api) -> None:
    assert api.call("admin", "POST", "/api/assignment/segments", json={"definition": GOLD, "name": "gold"}).status_code == 201
    rule = {"name": "accounts", "pool": {"table": "account", "sellers": [1, 2]}, "distribution": "round_robin"}
    r = api.call("marketer", "POST", "/api/assignment/segments/gold/rules", json=rule)
    assert r.status_code == 201, r.text
    assert api.call("viewer", "POST", "/api/assignment/segments/gold/rules", json=rule).status_code == 403
    bad = {"name": "bad", "pool": {"table": "account", "sellers": [{"x": 1}]}}
    assert api.call("admin", "POST", "/api/assignment/segments/gold/rules", json=bad).status_code == 422
    r = api.call("marketer", "PUT", "/api/assignment/segments/gold/rules/accounts/active", json={"active": True})
    assert r.status_code == 200 and r.json()[0]["active"]
    assert api.call("marketer", "POST", "/api/assignment/segments/gold/activate").status_code == 200
    members = api.call("viewer", "GET", "/api/assignment/segments/gold/simulate").json()["keys"]
    sellers = {
        api.call("viewer", "GET", f"/api/assignment/tables/contact/records/{k}").json()["assignment"]["seller"] for k in members
    }
    assert sellers <= {"1", "2"} and sellers
    load = api.call("viewer", "GET", "/api/assignment/sellers/account/1").json()["load"]
    assert load + api.call("viewer", "GET", "/api/assignment/sellers/account/2").json()["load"] == len(members)
    assert api.call("viewer", "GET", "/api/assignment/tables/contact/queue").json() == []
    assert api.call("viewer", "GET", "/api/assignment/tables/nope/queue").status_code == 404
    assert api.call("viewer", "GET", "/api/assignment/sellers/account/999").status_code == 404
