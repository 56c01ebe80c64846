"""The journey routes under /api/journeys over a real service (TestClient), with real SMTP for the sends."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.journeys.conftest import SEGMENTS, T0, WELCOME, JourneyWs, Sink


def test_create_publish_report_stop_over_rest(jws: JourneyWs, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    from segmenta.interfaces.api.app import create_app
    from segmenta.interfaces.api.runtime import Service

    monkeypatch.setenv("SEGMENTA_NOW", T0)
    monkeypatch.setenv("SEGMENTA_SMTP_URL", jws.smtp_url)
    service = Service(jws.ws)
    first = service.users.ensure_admin()
    assert first is not None
    with service.segments() as segs:
        for n in ("uk", "do-not-email", "purchased", "clickers"):
            segs.create(SEGMENTS[n], name=n)
            segs.publish(n)
    auth = {"Authorization": f"Bearer {first.token}"}
    with TestClient(create_app(service=service)) as client:

        def call(method: str, path: str, **kw: Any) -> Any:
            return client.request(method, path, headers=auth, **kw)

        bad = copy.deepcopy(WELCOME)
        bad["steps"][1]["wait"] = {"days": 91}
        r = call("POST", "/api/journeys", json={"definition": bad})
        assert r.status_code in (400, 422), r.text
        assert "/steps/1/wait" in r.text
        r = call("POST", "/api/journeys", json={"definition": WELCOME})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "draft"
        assert [j["name"] for j in call("GET", "/api/journeys").json()] == ["welcome"]
        r = call("POST", "/api/journeys/welcome/publish")
        assert r.status_code == 200, r.text
        assert r.json()["report"]["entered"] == 3
        r = call("POST", "/api/journeys/welcome/advance")
        assert r.status_code == 200 and r.json()["sent"] == 2, r.text
        report = call("GET", "/api/journeys/welcome/report").json()
        assert {k: report[k] for k in ("entered", "sent", "skipped")} == {"entered": 3, "sent": 2, "skipped": 1}
        assert report["at_step"]["pause"] == 3
        assert call("GET", "/api/journeys/nope/report").status_code == 404
        assert call("POST", "/api/journeys/welcome/stop").json()["status"] == "stopped"
        assert call("POST", "/api/journeys/welcome/publish").status_code == 409
    service.close()
    assert len(sink.messages) == 2
