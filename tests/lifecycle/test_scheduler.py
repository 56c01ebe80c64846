"""``segmenta serve`` refreshes due segments in-process (issue 8 section 8): a real server on loopback."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import serve_process
from tests.lifecycle.conftest import Lifecycle
from tests.lifecycle.test_segments import UK

#: ``serve`` starts a JVM of its own on Spark and missed the 30 s request timeout on a loaded
#: 2-core machine; the scheduler's refresh is the worker's (test_worker.py runs on Spark).
SPARK_CASES: tuple[str, ...] = ()

LATER = "2026-10-02T12:00:00"  # a day after publishing: the segment is due


@contextmanager
def serving(life: Lifecycle, *args: str) -> Iterator[tuple[httpx.Client, list[str]]]:
    """``segmenta serve ARGS`` on a free port with the clock at LATER; an API client with the admin's token."""
    env = {**life.cli_env(), "SEGMENTA_NOW": LATER}
    with serve_process(serve_args=args, env=env, start_timeout=90) as (proc, base, lines):
        token = re.search(r"Bearer \.\.\.\): (\S+)", "".join(lines))
        assert token is not None, "".join(lines)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token.group(1)}"}, timeout=30) as client:
            yield client, lines
    out = "".join(lines)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal as its exit status
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in out and "Traceback" not in out, out


def _worker_runs(client: httpx.Client, seg_id: int) -> list[dict[str, Any]]:
    runs = client.get(f"/api/segments/{seg_id}/history")
    assert runs.status_code == 200, runs.text
    return [r for r in runs.json() if r["trigger"] == "worker"]


def test_serve_refreshes_due_segments_itself_and_stops_cleanly(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    with serving(life, "--scheduler-interval", "1") as (client, lines):
        assert any("refresh scheduler: every 1 s" in line for line in lines)
        seg_id = client.get("/api/segments").json()[0]["id"]
        deadline = time.monotonic() + 60
        # the history lists a run while it runs: wait for it to end (on PostgreSQL that is seen)
        while not (runs := [r for r in _worker_runs(client, seg_id) if r["status"] != "running"]):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        assert [(r["at"], r["status"], r["size"]) for r in runs] == [(LATER, "done", 3)]
        shown = client.get(f"/api/segments/{seg_id}").json()
        assert shown["next_refresh_at"] == "2026-10-03T12:00:00"
        time.sleep(2.5)  # further passes find nothing due until then
        assert len(_worker_runs(client, seg_id)) == 1


def test_no_scheduler_leaves_refreshes_to_a_worker(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    with serving(life, "--no-scheduler", "--scheduler-interval", "1") as (client, lines):
        assert any("refresh scheduler: off" in line for line in lines)
        seg_id = client.get("/api/segments").json()[0]["id"]
        time.sleep(3)
        assert _worker_runs(client, seg_id) == []
