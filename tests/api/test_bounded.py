"""Every piece of work a request can cause is bounded: oversized definitions are refused naming the limit,
a query over its time limit is cancelled with a 503 naming the setting, and other users keep being answered."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient

import segmenta
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import GOLD, Api, Template

TIER = {"attribute": "tier", "op": "eq", "value": "Gold"}
HUGE_ALL = {"audience": "contact", "groups": [{"where": {"all": [TIER] * 20_000}}]}
HUGE_ANY = {"audience": "contact", "groups": [{"where": {"any": [TIER] * 20_000}}]}


def _deep(depth: int) -> dict:
    node: dict = TIER
    for _ in range(depth):
        node = {"all": [node]}
    return {"audience": "contact", "groups": [{"where": node}]}


def _with_settings(template: Template, path: Path, settings: dict) -> Path:
    shutil.copytree(template.path, path)
    config = path / "segmenta.yaml"
    loaded = yaml.safe_load(config.read_text()) or {}
    for section, values in settings.items():
        loaded[section] = {**(loaded.get(section) or {}), **values}
    config.write_text(yaml.safe_dump(loaded))
    return path


def test_a_20000_condition_estimate_is_refused_naming_the_limit(api: Api) -> None:
    for definition in (HUGE_ALL, HUGE_ANY):  # ~0.9 MB: under the body cap, over limits.max_conditions
        refused = api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": definition})
        assert refused.status_code == 422
        assert "conditions exceed the limit of 500 (setting limits.max_conditions)" in refused.json()["error"]["message"]
    bigger = {"audience": "contact", "groups": [{"where": {"all": [TIER] * 40_000}}]}
    refused = api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": bigger})
    assert refused.status_code == 413 and "service.max_body_bytes" in refused.json()["error"]["message"]


def test_oversized_definitions_are_422_naming_the_limit(template: Template, tmp_path: Path) -> None:
    path = _with_settings(template, tmp_path / "ws", {"service": {"max_body_bytes": 8 * 1024 * 1024}})
    service = Service(path)
    with TestClient(create_app(service=service)) as client:
        auth = {"Authorization": f"Bearer {template.tokens['viewer']}"}
        for route in ("estimate", "preview", "evaluate", "sql"):
            refused = client.post(f"/api/definitions/{route}", json={"definition": HUGE_ALL}, headers=auth)
            assert refused.status_code == 422, (route, refused.text)
            assert "limits.max_conditions" in refused.json()["error"]["message"], route
        deep = client.post("/api/definitions/estimate", json={"definition": _deep(400)}, headers=auth)
        assert deep.status_code == 422 and "limits.max_depth" in deep.text
        check = client.post("/api/definitions/validate", json={"definition": HUGE_ANY}, headers=auth).json()
        assert check["ok"] is False and "limits.max_conditions" in check["problems"][0]["message"]
        marketer = {"Authorization": f"Bearer {template.tokens['marketer']}"}
        create = client.post("/api/segments", json={"definition": HUGE_ALL, "name": "Huge"}, headers=marketer)
        assert create.status_code == 422 and "limits.max_conditions" in create.text
        edit = client.put("/api/segments/Draft", json={"definition": _deep(400)}, headers=marketer)
        assert edit.status_code == 422 and "limits.max_depth" in edit.text
        assert "Huge" not in [s["name"] for s in client.get("/api/segments", headers=auth).json()]
        assert client.post("/api/definitions/estimate", json={"definition": GOLD}, headers=auth).json()["count"] == 2


def test_a_smaller_configured_limit_applies(template: Template, tmp_path: Path) -> None:
    path = _with_settings(template, tmp_path / "ws", {"limits": {"max_conditions": 3}})
    service = Service(path)
    with TestClient(create_app(service=service)) as client:
        auth = {"Authorization": f"Bearer {template.tokens['viewer']}"}
        four = {"audience": "contact", "groups": [{"where": {"all": [TIER] * 4}}]}
        refused = client.post("/api/definitions/estimate", json={"definition": four}, headers=auth)
        assert refused.status_code == 422 and "limit of 3 (setting limits.max_conditions)" in refused.text


# -- on a real server: a hostile user does not stop the others; a slow query is cancelled -----------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(workspace: Path) -> Iterator[str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "segmenta", "--workspace", str(workspace), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the service stopped"
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def test_other_users_are_answered_while_one_sends_20000_conditions(template: Template, tmp_path: Path) -> None:
    # a body cap large enough that the server parses and validates the 1.4 MB definition every time
    path = _with_settings(template, tmp_path / "ws", {"service": {"max_body_bytes": 8 * 1024 * 1024}})
    with _serve(path) as base:
        hostile = {"Authorization": f"Bearer {template.tokens['viewer']}"}
        other = {"Authorization": f"Bearer {template.tokens['marketer']}"}
        stop = threading.Event()
        answers: list[tuple[int, str]] = []

        def attack() -> None:
            with httpx.Client(base_url=base, timeout=60) as c:
                while not stop.is_set():
                    for definition in (HUGE_ALL, HUGE_ANY):
                        r = c.post("/api/definitions/estimate", json={"definition": definition}, headers=hostile)
                        answers.append((r.status_code, r.text[:500]))

        attackers = [threading.Thread(target=attack) for _ in range(2)]
        for t in attackers:
            t.start()
        slowest = 0.0
        try:
            with httpx.Client(base_url=base, timeout=30) as c:
                time.sleep(0.5)
                for _ in range(20):
                    start = time.monotonic()
                    r = c.post("/api/definitions/estimate", json={"definition": GOLD}, headers=other)
                    slowest = max(slowest, time.monotonic() - start)
                    assert r.status_code == 200 and r.json()["count"] == 2
        finally:
            stop.set()
            for t in attackers:
                t.join(timeout=120)
    assert answers, "the hostile requests were never answered"
    assert all(status == 422 and "limits.max_conditions" in text for status, text in answers), answers[:3]
    assert slowest < 5.0, f"another user's estimate took {slowest:.1f} s while the 20,000-condition requests ran"


@pytest.fixture
def slow_workspace(tmp_path: Path) -> tuple[Path, str]:
    """2,000,000 people and a statement timeout of 0.05 s: 300 text searches over them all take at least 0.25 s
    even on an idle machine (0.265 s measured), so every such estimate is cancelled."""
    model = {"tables": {"person": {"key": "id", "columns": {"id": {"type": "integer"}, "note": {"type": "text"}}}}}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    n = 2_000_000
    pq.write_table(
        pa.table({"id": pa.array(range(n), pa.int64()), "note": pa.array([f"note {i} of many" for i in range(n)])}),
        tmp_path / "person.parquet",
    )
    ws = segmenta.Workspace.init(tmp_path / "ws", model=tmp_path / "model.yaml")
    ws.load("person", tmp_path / "person.parquet")
    ws.close()
    config = tmp_path / "ws" / "segmenta.yaml"
    loaded = yaml.safe_load(config.read_text()) or {}
    loaded["limits"] = {"statement_timeout_s": 0.05}
    config.write_text(yaml.safe_dump(loaded))
    service = Service(tmp_path / "ws")
    try:
        first = service.users.ensure_admin()
        assert first is not None
        token = first.token
    finally:
        service.close()
    return tmp_path / "ws", token


def test_a_query_over_the_time_limit_is_a_503_naming_it_and_frees_its_cursor(slow_workspace: tuple[Path, str]) -> None:
    path, token = slow_workspace
    service = Service(path)
    auth = {"Authorization": f"Bearer {token}"}
    slow = {
        "audience": "person",
        "groups": [{"where": {"any": [{"attribute": "note", "op": "contains", "value": f"{i} of m"} for i in range(300)]}}],
    }
    with TestClient(create_app(service=service)) as client:
        for _ in range(3):  # each time cancelled, and the next request still works
            r = client.post("/api/definitions/estimate", json={"definition": slow}, headers=auth)
            assert r.status_code == 503, r.text
            body = r.json()["error"]
            assert body["type"] == "Timeout" and "limits.statement_timeout_s" in body["message"]
            assert "SELECT" not in body["message"]
        assert client.get("/api/model", headers=auth).status_code == 200
        quick = {"audience": "person", "groups": [{"where": {"attribute": "id", "op": "eq", "value": 1}}]}
        assert client.post("/api/definitions/validate", json={"definition": quick}, headers=auth).json()["ok"] is True


# -- evaluate lists a bounded number of keys; members/add and /remove take a bounded number -----------


def test_evaluate_without_a_limit_lists_at_most_10000_keys_and_counts_all(api: Api, conformance_dir: Path) -> None:
    lines = (conformance_dir / "data" / "contact.csv").read_text().splitlines()
    first = lines[1].split(",", 1)[1]  # Ann, Gold
    many = api.service.ws.path / "many.csv"
    many.write_text("\n".join([lines[0], *(f"{k},{first}" for k in range(1, 10_051))]) + "\n")
    api.service.ws.load("contact", many)
    got = api.call("viewer", "POST", "/api/definitions/evaluate", json={"definition": GOLD})
    assert got.status_code == 200, got.text
    answer = got.json()
    assert answer["count"] == 10_050 and answer["keys"] == list(range(1, 10_001))
    assert answer["truncated"] is True and answer["limit"] == 10_000
    assert "members.csv" in answer["warnings"][0] and "10,000 of 10,050" in answer["warnings"][0]
    every = api.call("viewer", "POST", "/api/definitions/evaluate", json={"definition": GOLD, "limit": 20_000}).json()
    assert len(every["keys"]) == every["count"] == 10_050 and every["truncated"] is False and every["warnings"] == []
    over = api.call("viewer", "POST", "/api/definitions/evaluate", json={"definition": GOLD, "limit": 100_001})
    assert over.status_code == 422
    message = over.json()["error"]["message"]
    assert "/limit" in message and "100,000" in message and "service.max_evaluate_keys" in message


def test_configured_key_limits_apply_and_a_bad_one_is_refused(template: Template, tmp_path: Path) -> None:
    path = _with_settings(template, tmp_path / "ws", {"service": {"max_evaluate_keys": 1, "max_member_keys": 3}})
    service = Service(path)
    with TestClient(create_app(service=service)) as client:
        viewer = {"Authorization": f"Bearer {template.tokens['viewer']}"}
        marketer = {"Authorization": f"Bearer {template.tokens['marketer']}"}
        got = client.post("/api/definitions/evaluate", json={"definition": GOLD}, headers=viewer).json()
        assert (got["count"], got["keys"], got["truncated"]) == (2, [1], True)
        over = client.post("/api/definitions/evaluate", json={"definition": GOLD, "limit": 2}, headers=viewer)
        assert over.status_code == 422 and "at most 1 keys per evaluate (setting service.max_evaluate_keys)" in over.text
        for verb in ("add", "remove"):
            refused = client.post(f"/api/segments/List/members/{verb}", json={"keys": [1, 2, 3, 4]}, headers=marketer)
            assert refused.status_code == 422, refused.text
            message = refused.json()["error"]["message"]
            assert "/keys" in message and "4 keys; at most 3" in message and "service.max_member_keys" in message
        assert client.get("/api/segments/List", headers=viewer).json()["size"] == 0  # nothing changed
        added = client.post("/api/segments/List/members/add", json={"keys": [1, 2, 3]}, headers=marketer)
        assert added.status_code == 200 and added.json()["size"] == 3
    bad = _with_settings(template, tmp_path / "bad", {"service": {"max_evaluate_keys": 0}})
    with pytest.raises(segmenta.errors.RejectedInput) as refused_setting:
        create_app(bad)
    assert "service.max_evaluate_keys" in str(refused_setting.value) and "1 to 10,000,000" in str(refused_setting.value)
