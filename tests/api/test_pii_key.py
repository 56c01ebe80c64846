"""A model whose key column is PII: restricted users never see a key, nor build a condition on it.

Every answer that would show a key to them (evaluate, members, members.csv, preview) shows
``***``; calls that take keys from them (add, remove, a record's history) are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

import segmenta
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import PASSWORD

MODEL = {
    "tables": {
        "person": {
            "key": "email",
            "columns": {"email": {"type": "text", "pii": True}, "tier": {"type": "text"}, "city": {"type": "text"}},
        }
    }
}
ROWS = "email,tier,city\nann@x.example,Gold,Leeds\nbob@x.example,Gold,York\ncy@x.example,Silver,Leeds\n"
GOLD = {"audience": "person", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]}
ADDRESSES = ("ann@x.example", "bob@x.example", "cy@x.example")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(MODEL))
    (tmp_path / "person.csv").write_text(ROWS)
    ws = segmenta.Workspace.init(tmp_path / "ws", model=tmp_path / "model.yaml")
    ws.load("person", tmp_path / "person.csv")
    ws.close()
    service = Service(tmp_path / "ws")
    service.users.create_user("rita", password=PASSWORD, role="marketer", pii_restricted=True)
    service.users.create_user("mark", password=PASSWORD, role="marketer")
    auth = {u: {"Authorization": f"Bearer {service.users.create_token(u)}"} for u in ("rita", "mark")}
    with service.segments() as segs:
        segs.create(GOLD, name="Gold")
        segs.publish("Gold")
        segs.create_list(audience="person", name="L")
        segs.add("L", ["ann@x.example"])
    with TestClient(create_app(service=service)) as c:
        yield c, auth


def _no_address(text: str) -> None:
    assert not any(a in text for a in ADDRESSES), text


def test_restricted_users_see_masked_keys_everywhere(client: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    c, auth = client
    rita = auth["rita"]
    evaluated = c.post("/api/definitions/evaluate", json={"definition": GOLD}, headers=rita)
    assert evaluated.status_code == 200
    assert evaluated.json()["count"] == 2 and evaluated.json()["keys"] == ["***", "***"]
    assert evaluated.json()["masked"] == ["email"]
    _no_address(evaluated.text)
    estimate = c.post("/api/definitions/estimate", json={"definition": GOLD}, headers=rita)
    assert estimate.json()["count"] == 2
    preview = c.post("/api/definitions/preview", json={"definition": GOLD, "show_pii": True}, headers=rita)
    assert preview.status_code == 200 and [r["email"] for r in preview.json()["rows"]] == ["***", "***"]
    _no_address(preview.text)
    members = c.get("/api/segments/Gold/members", headers=rita)
    assert members.json()["keys"] == ["***", "***"] and members.json()["total"] == 2
    rows = c.get("/api/segments/Gold/members", params={"columns": "tier,city"}, headers=rita)
    assert [(r["email"], r["city"]) for r in rows.json()["rows"]] == [("***", "Leeds"), ("***", "York")]
    assert "email" in rows.json()["masked"]
    for params in ({}, {"columns": "city"}, {"show_pii": "true"}):
        export = c.get("/api/segments/Gold/members.csv", params=params, headers=rita)
        assert export.status_code == 200
        _no_address(export.text)
        assert [line.split(",")[0] for line in export.text.splitlines()[1:]] == ["***", "***"]
    # others still see the keys
    assert c.post("/api/definitions/evaluate", json={"definition": GOLD}, headers=auth["mark"]).json()["keys"] == [
        "ann@x.example",
        "bob@x.example",
    ]


def test_a_condition_on_a_pii_key_is_rejected_as_if_it_did_not_exist(
    client: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    c, auth = client
    by_key = {"audience": "person", "groups": [{"where": {"attribute": "email", "op": "eq", "value": "ann@x.example"}}]}
    for route in ("estimate", "evaluate", "preview", "validate"):
        answer = c.post(f"/api/definitions/{route}", json={"definition": by_key}, headers=auth["rita"])
        body = answer.json()
        problems = body["problems"] if route == "validate" else body["error"]["problems"]
        assert problems[0]["where"] == "/groups/0/where", (route, body)
        assert "has no attribute 'email'" in problems[0]["message"], (route, body)
    assert c.post("/api/definitions/estimate", json={"definition": by_key}, headers=auth["mark"]).json()["count"] == 1


def test_restricted_users_cannot_probe_keys(client: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    c, auth = client
    for path, kwargs in (
        ("/api/segments/L/members/add", {"json": {"keys": ["bob@x.example"]}}),
        ("/api/segments/L/members/remove", {"json": {"keys": ["ann@x.example"]}}),
    ):
        refused = c.post(path, headers=auth["rita"], **kwargs)
        assert refused.status_code == 403 and "person.email is PII" in refused.json()["error"]["message"]
    history = c.get("/api/segments/L/history", params={"record": "ann@x.example"}, headers=auth["rita"])
    assert history.status_code == 403
    assert c.get("/api/segments/L/members", headers=auth["mark"]).json()["keys"] == ["ann@x.example"]
