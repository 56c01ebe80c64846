"""The membership event stream over HTTP: pages from an offset, Server-Sent Events, per-minute activity.

Pages and activity run in-process; the stream runs on a real ``segmenta serve`` on loopback
(an endless response needs a real server): ``id:`` is the offset, a record change made
through the REST API arrives on an open stream, ``Last-Event-ID`` resumes after that offset,
heartbeats flow, a user's streams are bounded, a stream ends after its maximum duration, and
a server told to stop ends its streams and exits.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi.testclient import TestClient

import segmenta
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import PASSWORD, Api, Template
from tests.conftest import serve_process


def page(api: Api, who: str = "admin", **params: Any) -> dict[str, Any]:
    answer = api.call(who, "GET", "/api/events", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def replay(events: list[dict[str, Any]], segment: str) -> list[Any]:
    members: set[Any] = set()
    for e in events:
        if e["segment"] == segment:
            (members.add if e["change"] == "entered" else members.discard)(e["key"])
    return sorted(members)


def test_pages_follow_offsets_and_replay_to_the_membership(api: Api) -> None:
    first = page(api)
    offsets = [e["offset"] for e in first["events"]]
    assert offsets and offsets == sorted(set(offsets)) and first["next"] == offsets[-1] == first["last"]
    gold = api.call("admin", "GET", "/api/segments/Gold/members").json()["keys"]
    assert replay(first["events"], "Gold") == sorted(gold)
    assert page(api, **{"from": first["next"]}) == {"events": [], "next": first["next"], "last": first["last"]}
    changed = api.call("operator", "POST", "/api/tables/contact/records", json=[{"contactid": 2, "tier": "Gold"}])
    assert changed.status_code == 200 and changed.json()["refreshed"] == ["Gold"]
    after = page(api, **{"from": first["next"]})
    assert [(e["segment"], e["key"], e["change"]) for e in after["events"]] == [("Gold", 2, "entered")]
    assert after["events"][0]["cause"]["kind"] in ("records", "refresh")
    every = page(api, limit=2)
    assert len(every["events"]) == 2 and every["next"] == every["events"][-1]["offset"]
    assert replay(page(api)["events"], "Gold") == sorted([*gold, 2])
    only = page(api, segment="Gold")
    assert {e["segment"] for e in only["events"]} == {"Gold"}


def test_a_page_as_json_lines_and_the_refusals(shared_api: Api) -> None:
    answer = shared_api.call("viewer", "GET", "/api/events", headers={"Accept": "application/x-ndjson"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines and int(answer.headers["Segmenta-Next-Offset"]) == lines[-1]["offset"]
    assert shared_api.call("viewer", "GET", "/api/events", params={"segment": "Nope"}).status_code == 404
    assert shared_api.call("viewer", "GET", "/api/events", params={"from": -1}).status_code == 422
    assert shared_api.call(None, "GET", "/api/events").status_code == 401
    assert shared_api.call(None, "GET", "/api/events/stream").status_code == 401
    assert shared_api.call("viewer", "GET", "/api/segments/Nope/activity").status_code == 404


def test_activity_counts_entered_and_exited_per_minute(api: Api) -> None:
    before = api.call("viewer", "GET", "/api/segments/Gold/activity", params={"minutes": 5}).json()
    assert len(before["minutes"]) == 5 and before["segment"] == "Gold"
    api.call(
        "admin",
        "POST",
        "/api/tables/contact/records",
        json=[{"contactid": 2, "tier": "Gold"}, {"contactid": 1, "tier": "Bronze"}],
    )
    after = api.call("viewer", "GET", "/api/segments/Gold/activity", params={"minutes": 5}).json()
    assert (after["entered"] - before["entered"], after["exited"] - before["exited"]) == (1, 1)
    assert after["last_offset"] > before["last_offset"]
    assert sum(m["entered"] + m["exited"] for m in after["minutes"]) == after["entered"] + after["exited"]


def test_keys_of_a_pii_keyed_audience_are_masked_for_restricted_users(tmp_path: Path) -> None:
    model = {
        "tables": {"person": {"key": "email", "columns": {"email": {"type": "text", "pii": True}, "tier": {"type": "text"}}}}
    }
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    (tmp_path / "person.csv").write_text("email,tier\nann@x.example,Gold\nbob@x.example,Silver\n")
    ws = segmenta.Workspace.init(tmp_path / "ws", model=tmp_path / "model.yaml")
    ws.load("person", tmp_path / "person.csv")
    ws.close()
    service = Service(tmp_path / "ws")
    for user, restricted in (("rita", True), ("mark", False)):
        service.users.create_user(user, password=PASSWORD, role="marketer", pii_restricted=restricted)
    auth = {u: {"Authorization": f"Bearer {service.users.create_token(u)}"} for u in ("rita", "mark")}
    with service.segments() as segs:
        segs.create({"audience": "person", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]}, name="G")
        segs.publish("G")
    with TestClient(create_app(service=service)) as c:
        hidden = c.get("/api/events", headers=auth["rita"])
        assert hidden.status_code == 200 and "ann@x.example" not in hidden.text
        assert [e["key"] for e in hidden.json()["events"]] == ["***"]
        shown = c.get("/api/events", headers=auth["mark"]).json()
        assert [e["key"] for e in shown["events"]] == ["ann@x.example"]


# -- the stream, on a real server ----------------------------------------------------------------


def _served(template: Template, path: Path) -> Path:
    shutil.copytree(template.path, path)
    return path


class Sse:
    """Reads one SSE stream: events as (id, name, data), comments counted."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.comments = 0

    def next(self) -> tuple[str | None, str, Any]:
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if "data" in fields:  # as a browser: only a block with data is an event (retry: alone is not)
                    return fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                fields = {}
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")
        raise AssertionError("the stream ended without another event")


def test_the_stream_sends_offsets_live_changes_resumes_and_ends(template: Template, tmp_path: Path) -> None:
    path = _served(template, tmp_path / "ws")
    admin = {"Authorization": f"Bearer {template.tokens['admin']}"}
    viewer = {"Authorization": f"Bearer {template.tokens['viewer']}"}
    with serve_process("--workspace", str(path)) as (_proc, base, _lines), httpx.Client(base_url=base, timeout=30) as c:
        backlog = c.get("/api/events", headers=admin).json()
        short = {"heartbeat": 0.5, "max_seconds": 4}
        with c.stream("GET", "/api/events/stream", params={"from": 0, **short}, headers=viewer) as live:
            assert live.status_code == 200 and live.headers["content-type"].startswith("text/event-stream")
            sse = Sse(live.iter_lines())
            seen = [sse.next() for _ in backlog["events"]]
            assert [int(i or 0) for i, _, _ in seen] == [e["offset"] for e in backlog["events"]]
            assert all(name == "membership" for _, name, _ in seen) and seen[-1][2] == backlog["events"][-1]
            # a fifth stream of one user is refused while four are open (another user's is not)
            with ExitStack() as more:
                for _ in range(3):
                    assert more.enter_context(c.stream("GET", "/api/events/stream", headers=viewer)).status_code == 200
                fifth = c.get("/api/events/stream", headers=viewer)
                assert fifth.status_code == 429 and "event streams open" in fifth.text
                with c.stream("GET", "/api/events/stream", headers=admin) as other:
                    assert other.status_code == 200
            changed = c.post("/api/tables/contact/records", json=[{"contactid": 2, "tier": "Gold"}], headers=admin)
            assert changed.status_code == 200, changed.text
            offset, name, data = sse.next()
            assert name == "membership" and (data["segment"], data["key"], data["change"]) == ("Gold", 2, "entered")
            assert int(offset or 0) == data["offset"] > backlog["last"]
            _, name, data = sse.next()  # nothing more: heartbeats until the maximum duration ends it
            assert name == "end" and data == {"reason": "max_seconds", "offset": int(offset or 0)}
            assert sse.comments >= 2
        resumed = {**viewer, "Last-Event-ID": str(backlog["last"])}
        with c.stream("GET", "/api/events/stream", params={"from": 0}, headers=resumed) as again:
            sse = Sse(again.iter_lines())
            first, _, data = sse.next()
            assert int(first or 0) == int(offset or 0) and data["key"] == 2  # after Last-Event-ID, not after from=0
        bad = c.get("/api/events/stream", headers={**viewer, "Last-Event-ID": "x"})
        assert bad.status_code == 422


def test_a_server_told_to_stop_ends_its_streams_and_exits(template: Template, tmp_path: Path) -> None:
    path = _served(template, tmp_path / "ws")
    viewer = {"Authorization": f"Bearer {template.tokens['viewer']}"}
    with serve_process("--workspace", str(path)) as (proc, base, lines), httpx.Client(base_url=base, timeout=30) as c:
        with c.stream("GET", "/api/events/stream", params={"heartbeat": 0.5}, headers=viewer) as live:
            sse = Sse(live.iter_lines())
            proc.send_signal(signal.SIGTERM)
            _, name, data = sse.next()
            assert name == "end" and data["reason"] == "shutdown"
        # uvicorn shuts down gracefully (the app's shutdown runs), then re-raises the signal it caught
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        for _ in range(100):  # the output reader may still be catching up with the last lines
            if any("Application shutdown complete" in line for line in lines):
                break
            time.sleep(0.1)
        assert any("Application shutdown complete" in line for line in lines), "".join(lines)
