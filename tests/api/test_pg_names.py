"""On a PostgreSQL store, names the store cannot hold are a clear 4xx, never a 500 (and are audited)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import PASSWORD, UK, Template
from tests.lifecycle.conftest import pg_schema_url  # noqa: F401 - the fixture: a fresh schema per test


@pytest.fixture
def pg_client(template: Template, tmp_path: Path, pg_schema_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:  # noqa: F811
    shutil.copytree(template.path, tmp_path / "ws")
    service = Service(tmp_path / "ws", store_url=pg_schema_url)
    first = service.users.ensure_admin()
    assert first is not None
    service.users.create_user("mark", password=PASSWORD, role="marketer")
    auth = {"Authorization": f"Bearer {service.users.create_token('mark')}"}
    with TestClient(create_app(service=service), raise_server_exceptions=False) as client:
        yield client, auth


def test_long_and_nul_names_are_4xx_on_postgresql(pg_client: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = pg_client
    assert client.post("/api/segments", json={"definition": UK, "name": "UK"}, headers=auth).status_code == 201
    for name, word in (("x" * 201, "200 characters"), ("a\x00b", "U+0000")):
        created = client.post("/api/segments", json={"definition": UK, "name": name}, headers=auth)
        assert created.status_code == 422 and word in created.text, created.text
        renamed = client.post("/api/segments/UK/rename", json={"new_name": name}, headers=auth)
        assert renamed.status_code == 422 and word in renamed.text, renamed.text
    for path in ("/api/segments/a%00b", "/api/segments/a%00b/members", "/api/segments/" + "y" * 300 + "/versions"):
        looked = client.get(path, headers=auth)
        assert looked.status_code == 404, (path, looked.status_code, looked.text)
    deleted = client.delete("/api/segments/a%00b", headers=auth)
    assert deleted.status_code == 404
    assert [s["name"] for s in client.get("/api/segments", headers=auth).json()] == ["UK"]
