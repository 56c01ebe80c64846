"""The sequence routes under /api/sequences over a real service (TestClient): create (422 at the pointer),
connect, activate, a seller's activities due today, done, show."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.sequences.conftest import T0, Crm

SEQ = {
    "name": "calls",
    "table": "contact",
    "steps": [
        {"id": "call", "phone_call": {"subject": "Call {firstname}"}},
        {"id": "t", "task": {"subject": "Note {firstname}"}},
    ],
}


def test_sequences_over_rest(crm: Crm, monkeypatch: pytest.MonkeyPatch) -> None:
    from segmenta.interfaces.api.app import create_app
    from segmenta.interfaces.api.runtime import Service

    monkeypatch.setenv("SEGMENTA_NOW", T0)
    service = Service(crm.ws)
    first = service.users.ensure_admin()
    assert first is not None
    auth = {"Authorization": f"Bearer {first.token}"}
    with TestClient(create_app(service=service)) as client:

        def call(method: str, path: str, **kw: Any) -> Any:
            return client.request(method, path, headers=auth, **kw)

        bad = {**SEQ, "steps": [*SEQ["steps"], {"id": "w", "wait": {"days": 2}}]}
        r = call("POST", "/api/sequences", json={"definition": bad})
        assert r.status_code in (400, 422) and "/steps/2/wait" in r.text, r.text
        assert call("GET", "/api/sequences").json() == []
        assert call("POST", "/api/sequences", json={"definition": SEQ}).status_code == 201
        r = call("POST", "/api/sequences/calls/connect", json={"segment": "UK leads"})
        assert r.status_code == 200 and r.json()["segment"] == "UK leads", r.text
        r = call("POST", "/api/sequences/calls/activate")
        assert r.status_code == 200 and r.json()["report"]["at_step"] == {"call": 3, "t": 0}, r.text
        acts = call("GET", "/api/sequences/activities", params={"seller": "7"}).json()
        assert sorted(a["subject"] for a in acts) == ["Call Ann", "Call Bob", "Call Cleo"]
        ann = next(a for a in acts if a["record"] == "1")
        r = call("POST", f"/api/sequences/activities/{ann['id']}/done", json={})
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
        assert call("POST", f"/api/sequences/activities/{ann['id']}/done", json={}).status_code == 409
        after = call("GET", "/api/sequences/activities", params={"seller": "7"}).json()
        assert sorted(a["subject"] for a in after) == ["Call Bob", "Call Cleo", "Note Ann"]
        assert call("GET", "/api/sequences/calls").json()["report"]["at_step"] == {"call": 2, "t": 1}
        assert call("GET", "/api/sequences/nope").status_code == 404
        assert call("POST", "/api/sequences/calls/deactivate").json()["status"] == "inactive"
        assert call("GET", "/api/sequences/activities", params={"seller": "7"}).json() == []
