"""A send killed part way (SIGKILL of the real process) and run again ends with exactly the segment's members."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.destinations.conftest import SECRET_KEY_ENV, dynamics_args, make_workspace, ok, publish, run
from tests.destinations.fake_dataverse import FakeAuthority, FakeDataverse

N = 12_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("resume")
    ws = make_workspace(tmp, N)
    publish(ws, tmp, "All", {"attribute": "contactid", "op": "gt", "value": 0})
    return ws


def _send_and_kill(ws: Path, dv: FakeDataverse, after_adds: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != SECRET_KEY_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmenta", "--workspace", str(ws), "destination", "send", "d365", "All", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while dv.calls.get("msdynmkt_AddStaticMembers", 0) < after_adds:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the send never reached {after_adds} calls: {proc.communicate()}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def test_a_killed_send_resumes_and_ends_with_exactly_the_members(
    big: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(big, ws)
    dataverse.latency = 0.02
    ok(
        run(
            ws,
            "destination",
            "create",
            "d365",
            *dynamics_args(tmp_path, dataverse, authority, segment_name="All", concurrency="2"),
        )
    )
    _send_and_kill(ws, dataverse, after_adds=6)
    partial = dataverse.members_of("All")
    assert 0 < len(partial) < N  # really killed part way
    history = json.loads(ok(run(ws, "destination", "history", "d365", "--json")).stdout)
    assert history[0]["status"] == "running"
    adds_before = dataverse.calls["msdynmkt_AddStaticMembers"]
    out = json.loads(ok(run(ws, "destination", "send", "d365", "All", "--json")).stdout)
    assert out["rows"] == N and out["rejected"] == 0
    assert dataverse.members_of("All") == {str(i) for i in range(1, N + 1)}
    assert len(dataverse.segments) == 1 and dataverse.violations == []
    # the second process carried on from the first one's checkpoint rather than starting over
    assert "msdynmkt_RemoveStaticMembers" not in dataverse.calls
    assert dataverse.calls["msdynmkt_AddStaticMembers"] - adds_before == out["calls"] <= N // 1000
    history = json.loads(ok(run(ws, "destination", "history", "d365", "--json")).stdout)
    assert [h["status"] for h in history] == ["done"]


def test_a_killed_send_of_an_older_run_starts_over_for_the_new_members(
    big: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(big, ws)
    dataverse.latency = 0.02
    ok(
        run(
            ws,
            "destination",
            "create",
            "d365",
            *dynamics_args(tmp_path, dataverse, authority, segment_name="All", concurrency="2"),
        )
    )
    _send_and_kill(ws, dataverse, after_adds=4)
    # the segment changes before the send is run again: the ids over 6,000 leave it
    (tmp_path / "small.json").write_text(
        json.dumps({"audience": "contact", "groups": [{"where": {"attribute": "contactid", "op": "lte", "value": 6000}}]})
    )
    ok(run(ws, "segment", "edit", "All", str(tmp_path / "small.json")))
    ok(run(ws, "segment", "publish", "All"))
    out = json.loads(ok(run(ws, "destination", "send", "d365", "All", "--json")).stdout)
    assert out["rows"] == 6_000
    assert dataverse.members_of("All") == {str(i) for i in range(1, 6_001)}
    assert dataverse.violations == []
    statuses = [h["status"] for h in json.loads(ok(run(ws, "destination", "history", "d365", "--json")).stdout)]
    assert statuses == ["done", "abandoned"]
