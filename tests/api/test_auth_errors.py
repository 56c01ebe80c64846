"""Hostile input to the sign-in and user routes answers 4xx with a message, never 500, on SQLite and on PostgreSQL;
and the OpenAPI document states the statuses these routes can answer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import Template
from tests.lifecycle.conftest import pg_schema_url  # noqa: F401 - the fixture is used by name

LONG = "x" * 300
NUL = "a\x00b"


@pytest.fixture(params=["sqlite", "postgres"])
def store_api(request: pytest.FixtureRequest, template: Template, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgres" else None
    path = tmp_path / "ws"
    shutil.copytree(template.path, path)
    service = Service(path, store_url=url)
    first = service.users.ensure_admin()
    token = first.token if first is not None else template.tokens["admin"]
    service.users.create_user("spare", password="long enough", role="viewer") if first is not None else None
    with TestClient(create_app(service=service)) as client:
        yield client, {"Authorization": f"Bearer {token}"}


CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/api/auth/login", {"json": {"username": LONG, "password": "long enough"}}, 422, "200 characters"),
    ("POST", "/api/auth/login", {"json": {"username": NUL, "password": "long enough"}}, 422, "/username"),
    ("POST", "/api/auth/login", {"json": {"username": "admin", "password": 12345678}}, 422, "/password"),
    ("POST", "/api/auth/login", {"json": {"username": "admin", "password": NUL}}, 422, "/password"),
    ("POST", "/api/auth/login", {"json": {"username": "admin", "password": "p" * 5000}}, 422, "1024 characters"),
    ("POST", "/api/auth/login", {"json": ["not", "an", "object"]}, 422, ""),
    ("PATCH", "/api/users/spare", {"json": {"password": 12345678}}, 422, "/password"),
    ("PATCH", "/api/users/spare", {"json": {"password": "with a \x00 inside"}}, 422, "NUL"),
    ("PATCH", "/api/users/spare", {"json": {"role": ["admin"]}}, 422, "/role"),
    ("PATCH", "/api/users/spare", {"json": {"disabled": "yes"}}, 422, "/disabled"),
    ("PATCH", "/api/users/spare", {"json": {"nickname": "x"}}, 422, "/nickname"),
    ("PATCH", "/api/users/spare", {"json": {"role": None}}, 422, "/role"),
    ("PATCH", "/api/users/spare", {"json": {"password": None}}, 422, "/password"),
    ("PATCH", "/api/users/spare", {"json": {"keep_tokens": None, "password": "long enough"}}, 422, "/keep_tokens"),
    ("POST", "/api/users", {"json": {"username": LONG, "password": "long enough", "role": "viewer"}}, 422, "200 characters"),
    ("POST", "/api/users", {"json": {"username": NUL, "password": "long enough", "role": "viewer"}}, 422, "/username"),
    ("POST", "/api/users", {"json": {"username": "ok", "password": 5, "role": "viewer"}}, 422, "/password"),
    ("GET", f"/api/users/{LONG}", {}, 422, "200 characters"),
    ("GET", "/api/users/a%00b", {}, 404, "no user has this name"),
    ("DELETE", "/api/users/a%00b", {}, 404, "no user has this name"),
    ("PATCH", "/api/users/a%00b", {"json": {"role": "viewer"}}, 404, "no user has this name"),
    ("POST", "/api/users/a%00b/tokens", {"json": {"label": "x"}}, 404, "no user has this name"),
    ("POST", "/api/users/spare/tokens", {"json": {"label": NUL}}, 422, "NUL"),
    ("GET", "/api/users/a%00b/tokens", {}, 404, "no user has this name"),
    ("DELETE", "/api/users/spare/tokens/99999999999999999999", {}, 422, "token_id"),
    ("DELETE", "/api/users/spare/tokens/abc", {}, 422, "token_id"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "words"), CASES)
def test_hostile_input_gets_a_clear_4xx(
    store_api: tuple[TestClient, dict[str, str]], method: str, path: str, kwargs: dict[str, Any], status: int, words: str
) -> None:
    client, admin = store_api
    response = client.request(method, path, headers=admin, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and words in response.text


def test_refusals_with_nul_names_are_audited(store_api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = store_api
    assert client.delete("/api/users/a%00b", headers=admin).status_code == 404
    assert client.post("/api/auth/login", json={"username": "a\x00b" * 2, "password": "whatever"}).status_code == 422
    assert client.post("/api/auth/login", json={"username": "ghost", "password": "whatever"}).status_code == 401
    rows = client.get("/api/audit", headers=admin, params={"user": NUL}).json()
    assert rows == []  # a NUL in the filter is no error either
    rows = client.get("/api/audit", headers=admin).json()
    assert any(r["action"] == "users.delete_user" and r["outcome"] == "not_found" and r["object"] == "a\ufffdb" for r in rows)
    assert any(r["action"] == "auth.login" and r["outcome"] == "unauthenticated" for r in rows)


def test_the_openapi_document_states_the_statuses_of_these_routes(store_api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = store_api
    paths = client.get("/openapi.json").json()["paths"]
    want = {
        ("post", "/api/auth/login"): {"200", "401", "403", "413", "422", "429"},
        ("get", "/api/auth/me"): {"200", "401"},
        ("get", "/api/users"): {"200", "401", "403", "422"},
        ("patch", "/api/users/{username}"): {"200", "401", "403", "404", "409", "422"},
        ("post", "/api/users/{username}/tokens"): {"201", "401", "403", "404", "422"},
        ("get", "/api/users/{username}/tokens"): {"200", "401", "403", "404"},
        ("delete", "/api/users/{username}/tokens/{token_id}"): {"200", "401", "403", "404", "422"},
        ("get", "/api/audit"): {"200", "401", "403", "422"},
    }
    for (method, path), codes in want.items():
        assert codes <= set(paths[path][method]["responses"]), (method, path, sorted(paths[path][method]["responses"]))
    for path, methods in paths.items():  # the body cap answers before any route runs
        for method, operation in methods.items():
            assert "413" in operation["responses"], (method, path)
    login = paths["/api/auth/login"]["post"]["responses"]["429"]
    assert "Retry-After" in login["headers"]
    patch = paths["/api/users/{username}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert patch.get("$ref", "").endswith("/UserChanges")  # a typed body, not 'any object'
