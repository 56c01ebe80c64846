"""The role x endpoint matrix: who may call what (403 otherwise), and nobody anonymously (401).

The expected table is written out here, independently of the service's permission table:
A=admin, O=operator, M=marketer, V=viewer. Every allowed call is a well-formed request
against the fixture's state, so "allowed" means a 2xx answer, not just "not 403".
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import GOLD, ROLES, UK, Api

ACCOUNT_CSV = b"accountid,name,industry,employees,revenue,country\n1,Northwind,Retail,120,1500000.0,UK\n"
IMPORT_CSV = b"email\nann@northwind.example\nnobody@example.com\n"

# (id, method, path, request kwargs, roles allowed)
CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("me", "GET", "/api/auth/me", {}, "AOMV"),
    ("roles", "GET", "/api/auth/roles", {}, "AOMV"),
    ("model", "GET", "/api/model", {}, "AOMV"),
    ("table-rows", "GET", "/api/tables/contact/rows", {}, "AOMV"),
    ("table-load", "POST", "/api/tables/account/load", {"files": {"file": ("account.csv", ACCOUNT_CSV, "text/csv")}}, "AO"),
    ("records-upsert", "POST", "/api/tables/contact/records", {"json": [{"contactid": 2, "tier": "Gold"}]}, "AO"),
    ("records-delete", "POST", "/api/tables/contact/records/delete", {"json": [{"contactid": 12345}]}, "AO"),
    ("events", "GET", "/api/events", {}, "AOMV"),
    ("activity", "GET", "/api/segments/Gold/activity", {}, "AOMV"),
    ("validate", "POST", "/api/definitions/validate", {"json": {"definition": GOLD}}, "AOMV"),
    ("estimate", "POST", "/api/definitions/estimate", {"json": {"definition": GOLD}}, "AOMV"),
    ("preview", "POST", "/api/definitions/preview", {"json": {"definition": GOLD}}, "AOMV"),
    ("sql", "POST", "/api/definitions/sql", {"json": {"definition": GOLD, "dialect": "spark"}}, "AOMV"),
    ("evaluate", "POST", "/api/definitions/evaluate", {"json": {"definition": GOLD}}, "AOMV"),
    ("segments-list", "GET", "/api/segments", {}, "AOMV"),
    ("segment-create", "POST", "/api/segments", {"json": {"definition": UK, "name": "New"}}, "AM"),
    ("list-create", "POST", "/api/segments", {"json": {"list": True, "audience": "contact", "name": "NewList"}}, "AM"),
    ("segment-show", "GET", "/api/segments/Gold", {}, "AOMV"),
    ("segment-edit", "PUT", "/api/segments/Draft", {"json": {"definition": GOLD}}, "AM"),
    ("versions", "GET", "/api/segments/Gold/versions", {}, "AOMV"),
    ("version", "GET", "/api/segments/Gold/versions/1", {}, "AOMV"),
    ("publish", "POST", "/api/segments/Draft/publish", {}, "AOM"),
    ("refresh", "POST", "/api/segments/Gold/refresh", {}, "AO"),
    ("stop", "POST", "/api/segments/Gold/stop", {}, "AO"),
    ("activate", "POST", "/api/segments/Draft/activate", {"json": {"status_reason": "ready"}}, "AO"),
    ("rename", "POST", "/api/segments/Draft/rename", {"json": {"new_name": "Renamed"}}, "AM"),
    ("delete", "DELETE", "/api/segments/Draft", {}, "AM"),
    ("restore", "POST", "/api/segments/Old/restore", {}, "AM"),
    ("settings", "PATCH", "/api/segments/Gold/settings", {"json": {"expiry_days": 10}}, "AO"),
    ("members", "GET", "/api/segments/Gold/members", {}, "AOMV"),
    ("members-csv", "GET", "/api/segments/Gold/members.csv", {}, "AOMV"),
    ("members-add", "POST", "/api/segments/List/members/add", {"json": {"keys": [1, 2]}}, "AOM"),
    ("members-remove", "POST", "/api/segments/List/members/remove", {"json": {"keys": [1]}}, "AOM"),
    ("history", "GET", "/api/segments/Gold/history", {}, "AOMV"),
    ("import-csv", "POST", "/api/segments/List/import-csv", {"files": {"file": ("in.csv", IMPORT_CSV, "text/csv")}}, "AOM"),
    ("worker", "POST", "/api/worker/run", {}, "AO"),
    ("audit", "GET", "/api/audit", {}, "AO"),
    ("users-list", "GET", "/api/users", {}, "A"),
    ("user-show", "GET", "/api/users/vera", {}, "A"),
    ("user-create", "POST", "/api/users", {"json": {"username": "newbie", "password": "long enough", "role": "viewer"}}, "A"),
    ("user-update", "PATCH", "/api/users/spare", {"json": {"role": "marketer"}}, "A"),
    ("user-delete", "DELETE", "/api/users/spare", {}, "A"),
    ("user-token", "POST", "/api/users/spare/tokens", {"json": {"label": "ci"}}, "A"),
    ("user-tokens", "GET", "/api/users/vera/tokens", {}, "A"),
    ("user-token-revoke", "DELETE", "/api/users/vera/tokens/4", {}, "A"),  # vera's token: the template's fourth
]
#: Routes outside the matrix, tested on their own (sign-in, and downloads that need an import first).
UNGUARDED = {("POST", "/api/auth/login"), ("POST", "/api/auth/logout")}
ELSEWHERE = {("GET", "/api/imports/{import_id}/not-found.csv"), ("GET", "/api/events/stream")}  # the stream: test_events_api
LETTER = {"admin": "A", "operator": "O", "marketer": "M", "viewer": "V"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("case", "method", "path", "kwargs", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_role_matrix(
    request: pytest.FixtureRequest, role: str, case: str, method: str, path: str, kwargs: dict[str, Any], allowed: str
) -> None:
    changes = LETTER[role] in allowed and not (method == "GET" or path.startswith("/api/definitions/"))
    api: Api = request.getfixturevalue("api" if changes else "shared_api")  # a copy of its own when the call changes things
    response = api.call(role, method, path, **kwargs)
    if LETTER[role] in allowed:
        assert 200 <= response.status_code < 300, (case, role, response.status_code, response.text)
    else:
        assert response.status_code == 403, (case, role, response.status_code, response.text)
        body = response.json()["error"]
        assert body["type"] == "PermissionDenied"
        assert role in body["message"]


@pytest.mark.parametrize(("case", "method", "path", "kwargs", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_anonymous_is_refused(shared_api: Api, case: str, method: str, path: str, kwargs: dict[str, Any], allowed: str) -> None:
    response = shared_api.call(None, method, path, **kwargs)
    assert response.status_code == 401, (case, response.text)
    assert response.json()["error"]["type"] == "Unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_bad_token_is_refused(api: Api) -> None:
    response = api.client.get("/api/model", headers={"Authorization": "Bearer sgt_not-a-real-token"})
    assert response.status_code == 401
    assert "sgt_not-a-real-token" not in response.text


def test_every_api_route_is_in_the_matrix(api: Api) -> None:
    routes = {
        (m, r.path) for r in api.client.app.routes if getattr(r, "path", "").startswith("/api") for m in getattr(r, "methods", ())
    }
    covered = {
        (
            m,
            p.replace("/Gold", "/{name}")
            .replace("/Draft", "/{name}")
            .replace("/List", "/{name}")
            .replace("/Old", "/{name}")
            .replace("/contact/", "/{table}/")
            .replace("/account/", "/{table}/")
            .replace("/vera", "/{username}")
            .replace("/spare", "/{username}")
            .replace("/versions/1", "/versions/{version}")
            .replace("/tokens/4", "/tokens/{token_id}"),
        )
        for _, m, p, _, _ in CASES
    }
    assert routes - covered - UNGUARDED - ELSEWHERE == set()


def test_a_disabled_user_loses_access(api: Api) -> None:
    assert api.call("viewer", "GET", "/api/model").status_code == 200
    assert api.call("admin", "PATCH", "/api/users/vera", json={"disabled": True}).status_code == 200
    assert api.call("viewer", "GET", "/api/model").status_code == 401


def test_a_new_role_takes_effect_at_once(api: Api) -> None:
    assert api.call("viewer", "POST", "/api/segments", json={"definition": UK, "name": "X"}).status_code == 403
    assert api.call("admin", "PATCH", "/api/users/vera", json={"role": "marketer"}).status_code == 200
    assert api.call("viewer", "POST", "/api/segments", json={"definition": UK, "name": "X"}).status_code == 201
