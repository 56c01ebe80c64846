"""REST /api/destinations: admin only, secrets never returned or logged, PII refused unless allowed."""

# ruff: noqa: F811 - the api fixture is imported from tests/api/conftest.py

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.api.conftest import Api, api, template  # noqa: F401 - pytest fixtures
from tests.destinations.conftest import CLIENT_ID, CLIENT_SECRET, TENANT
from tests.destinations.fake_dataverse import FakeAuthority, FakeDataverse

GOLD_IDS = {"1", "3"}  # contacts of tier Gold in the conformance data


def _body(dv: FakeDataverse, auth: FakeAuthority, **settings: object) -> dict:
    return {
        "name": "d365",
        "kind": "dynamics365-marketing",
        "settings": {"segment_name": "Gold", "org_url": dv.url, "authority": auth.url, "backoff_seconds": 0.01, **settings},
        "secrets": {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    }


def test_only_admins_manage_or_read_destinations(api: Api, dataverse: FakeDataverse, authority: FakeAuthority) -> None:
    for who in ("operator", "marketer", "viewer"):
        assert api.call(who, "GET", "/api/destinations").status_code == 403
        assert api.call(who, "POST", "/api/destinations", json=_body(dataverse, authority)).status_code == 403
    assert api.call(None, "GET", "/api/destinations").status_code == 401
    assert api.call("admin", "GET", "/api/destinations").json() == []


def test_secrets_never_come_back_nor_reach_the_logs_or_the_store_in_clear(
    api: Api, dataverse: FakeDataverse, authority: FakeAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = []
    r = api.call("admin", "POST", "/api/destinations", json=_body(dataverse, authority))
    assert r.status_code == 201, r.text
    answers.append(r.text)
    assert r.json()["secrets"] == {"tenant_id": "set", "client_id": "set", "client_secret": "set"}
    dataverse.faults = [429, 500]
    for method, path, body in [
        ("GET", "/api/destinations", None),
        ("GET", "/api/destinations/d365", None),
        ("POST", "/api/destinations/d365/test", None),
        ("POST", "/api/destinations/d365/send", {"segment": "Gold"}),
        ("GET", "/api/destinations/d365/sends", None),
        ("PATCH", "/api/destinations/d365", {"settings": {"concurrency": 4}}),
        ("GET", "/api/audit", None),
    ]:
        r = api.call("admin", method, path, json=body)
        assert r.status_code == 200, (path, r.text)
        answers.append(r.text)
    assert dataverse.members_of("Gold") == GOLD_IDS
    authority.client_secret = "changed"  # a refused credential: the error must not echo ours
    r = api.call("admin", "POST", "/api/destinations/d365/test")
    assert r.status_code == 500 and "invalid_client" in r.text
    answers.append(r.text)
    for text in [*answers, caplog.text]:
        assert CLIENT_SECRET not in text
    files = [p for p in Path(api.service.ws.path).rglob("*") if p.is_file()]
    assert any(f.name == "store.sqlite" for f in files)
    for f in files:  # the store, its WAL, the key file, the data: the secret is in none of them in clear
        assert CLIENT_SECRET.encode() not in f.read_bytes(), f


def test_pii_columns_are_refused_unless_the_destination_allows_them(api: Api, tmp_path: Path) -> None:
    out = tmp_path / "out"
    body = {"name": "files", "kind": "file", "settings": {"path": str(out)}}
    assert api.call("admin", "POST", "/api/destinations", json=body).status_code == 201
    r = api.call("admin", "POST", "/api/destinations/files/send", json={"segment": "Gold", "columns": ["contactid", "email"]})
    assert r.status_code == 422 and "pii" in r.text
    assert not out.exists() or list(out.iterdir()) == []
    assert api.call("admin", "PATCH", "/api/destinations/files", json={"settings": {"pii": True}}).status_code == 200
    r = api.call("admin", "POST", "/api/destinations/files/send", json={"segment": "Gold", "columns": ["contactid", "email"]})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == 2
    assert (out / "Gold.csv").read_text().splitlines()[0] == '"contactid","email"'
    # an admin restricted from PII can never send a PII column, whatever the destination allows
    api.service.users.create_user("pat", password=None, role="admin", pii_restricted=True)
    api.tokens["pat"] = api.service.users.create_token("pat")
    r = api.call("pat", "POST", "/api/destinations/files/send", json={"segment": "Gold", "columns": ["email"]})
    assert r.status_code == 422 and "restricted from PII" in r.text
    r = api.call("pat", "POST", "/api/destinations/files/send", json={"segment": "Gold", "columns": ["tier"]})
    assert r.status_code == 200, r.text
