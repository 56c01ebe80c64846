"""Settings with bounds, a worker pass that survives one bad segment, and short renewed leases (issue 9 item 3)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from segmenta.store.database import Store, resolve_url
from segmenta.store.models import Segment
from tests.killpoints import hang_env
from tests.lifecycle.conftest import Lifecycle
from tests.lifecycle.test_segments import CLICKED, UK

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
SPARK_CASES = ("test_one_bad_segment_never_stops_the_others_and_the_worker_exits_1",)
#: ... and of those, these also with the store on PostgreSQL.
SPARK_ON_PG_STORE: tuple[str, ...] = ()


def _store(life: Lifecycle) -> Store:
    return Store(resolve_url(life.ws, {}, life.store))


def _add_config(life: Lifecycle, text: str) -> None:
    cfg = life.ws / "segmenta.yaml"
    cfg.write_text(cfg.read_text() + text)


def test_out_of_range_settings_are_refused_naming_the_key_and_the_range(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    r = life.run("segment", "configure", "UK contacts", "--expiry-days", "1000000000", code=2)
    assert "expiry_days" in r.stderr and "1 to 3,660" in r.stderr
    r = life.run("segment", "configure", "UK contacts", "--refresh-minutes", "0", code=2)
    assert "refresh_minutes" in r.stderr and "1 to 527,040" in r.stderr
    assert life.json("segment", "show", "UK contacts")["settings"] == {}
    original = (life.ws / "segmenta.yaml").read_text()
    for text, key in (
        ("segments:\n  expiry_days: 1000000000\n", "segments.expiry_days"),
        ("segments:\n  refresh: {unused_minutes: 99999999999}\n", "segments.refresh.unused_minutes"),
        ("segments:\n  limits: {dynamic: 1000000000000}\n", "segments.limits.dynamic"),
        ("segments:\n  worker: {lease_seconds: 1}\n", "segments.worker.lease_seconds"),
    ):
        (life.ws / "segmenta.yaml").write_text(original + text)
        r = life.run("segment", "list", code=2)
        assert key in r.stderr and " to " in r.stderr, (key, r.stderr)
        r = life.run("worker", "--once", code=2)
        assert key in r.stderr


def test_the_api_refuses_an_out_of_range_setting_with_422(life: Lifecycle) -> None:
    from fastapi.testclient import TestClient

    from segmenta.interfaces.api.app import create_app
    from segmenta.interfaces.api.runtime import Service

    life.run("segment", "create", life.definition("uk", UK))
    service = Service(life.ws, store_url=life.store)
    first = service.users.ensure_admin()
    assert first is not None
    with TestClient(create_app(service=service)) as client:
        seg_id = client.get("/api/segments", headers={"Authorization": f"Bearer {first.token}"}).json()[0]["id"]
        r = client.patch(
            f"/api/segments/{seg_id}/settings",
            json={"expiry_days": 1_000_000_000},
            headers={"Authorization": f"Bearer {first.token}"},
        )
        assert r.status_code == 422, r.text
        assert "expiry_days" in r.text and "3,660" in r.text
        ok = client.patch(
            f"/api/segments/{seg_id}/settings", json={"expiry_days": 90}, headers={"Authorization": f"Bearer {first.token}"}
        )
        assert ok.status_code == 200 and ok.json()["settings"] == {"expiry_days": 90}


def test_one_bad_segment_never_stops_the_others_and_the_worker_exits_1(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked")
    life.run("segment", "publish", "Clicked")
    life.run("segment", "publish", "UK contacts")
    store = _store(life)
    try:  # a value stored before settings had bounds
        with store.session() as s:
            seg = s.scalar(select(Segment).where(Segment.name == "Clicked"))
            assert seg is not None
            seg.settings = {"expiry_days": 1_000_000_000}
    finally:
        store.close()
    r = life.run("worker", "--once", now="2026-10-02T12:00:00", code=1)
    assert "refreshed UK contacts" in r.stdout
    assert "failed Clicked" in r.stderr and "expiry_days" in r.stderr
    assert [x["trigger"] for x in life.json("segment", "history", "UK contacts")] == ["publish", "worker"]
    clicked = life.json("segment", "show", "Clicked")
    assert clicked["status"] == "error" and "expiry_days" in clicked["waiting"]
    life.run("worker", "--once", now="2026-10-02T12:01:00")  # nothing due, nothing failing: exit 0


def test_a_killed_worker_holds_a_short_lease_renewed_while_it_ran_and_show_says_so(life: Lifecycle) -> None:
    _add_config(life, "segments:\n  worker: {lease_seconds: 5}\n")
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    marker = life.tmp / "in-refresh"
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmenta", "worker", "--once"],
        env={**life.cli_env(), **hang_env(marker), "SEGMENTA_NOW": "2026-10-02T12:00:00"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        store = _store(life)
        try:
            leases = []
            for pause in (5.5, 0):  # longer than one lease: only a renewal keeps it
                with store.session() as s:
                    seg = s.scalar(select(Segment).where(Segment.name == "UK contacts"))
                    assert seg is not None and seg.lease_until is not None
                    leases.append((seg.lease_owner, seg.lease_until, dt.datetime.now(dt.UTC).replace(tzinfo=None)))
                time.sleep(pause)
            # while the worker holds DuckDB's data file, show answers from the store and says why the segment waits
            # (a PostgreSQL engine's data is open to both)
            shown = life.run("segment", "show", "UK contacts", "--json")
            assert ("in use by another process" in shown.stderr) == (life.engine == "duckdb"), shown.stderr
            waiting = json.loads(shown.stdout)["waiting"]
            (owner, first, _), (again, renewed, wall) = leases
            assert waiting.startswith(f"refresh lease held by {owner} until ") and waiting.endswith(" UTC")
            assert owner == again and str(proc.pid) in str(owner)
            assert renewed > first and renewed > wall  # renewed, still held
            assert renewed <= wall + dt.timedelta(seconds=5.5)  # a lease of seconds here (minutes by default), never 30
        finally:
            store.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    info = life.json("segment", "show", "UK contacts")
    assert info["waiting"].startswith(f"refresh lease held by {owner} until ")
    time.sleep(5.5)  # the killed worker's lease lapses by itself
    assert life.json("segment", "show", "UK contacts")["waiting"] is None
    life.run("worker", "--once", now="2026-10-02T12:00:00")
    runs = [x for x in life.json("segment", "history", "UK contacts") if x["trigger"] == "worker"]
    assert runs[-1]["status"] == "done"
