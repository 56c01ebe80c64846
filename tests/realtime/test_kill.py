"""Kill safety (issue 11 item 3): a real ``segmenta`` process SIGKILLed at many points loses and duplicates nothing.

On the lifecycle tests' small CRM (DuckDB, SQLite store), with three live dynamic segments (an
attribute, a related block, an ``in_segment`` of both). ``records upsert`` runs in a subprocess
and is killed after delays spread over its measured duration (before it started to work, inside
its transaction, between the change and its membership writes, after it finished); then
``segmenta worker --once`` (which writes pending batches) and the same file sent again (at least
once delivery: its change ids make it a no-op if it had committed). After each round:

- every live dynamic segment's stored membership equals a fresh evaluation;
- a consumer that kept its offset from before the kill reads on from it: offsets strictly
  increasing, every event a real transition (no key entering twice or leaving without having
  entered, so no duplicate (segment, key, change) for one transition), and its replayed
  membership equals the stored one.

``segment refresh`` and ``segment publish`` are killed inside their write (the test plugin
``tests.killpoints`` holds them just before the commit) and at a delay: no event of theirs is
seen, and the next run writes each transition exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from segmenta import clock
from segmenta.services import events, incremental
from segmenta.services.segments import Segments
from tests.killpoints import hang_env
from tests.lifecycle.conftest import T0

UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
CLICKERS = {
    "audience": "contact",
    "groups": [{"where": {"related": "interactions", "where": {"attribute": "type", "op": "eq", "value": "email_click"}}}],
}
UK_CLICKERS = {
    "audience": "contact",
    "groups": [{"where": {"in_segment": "clickers"}}, {"link": "and_also", "where": {"in_segment": "uk"}}],
}
ROUNDS = int(os.environ.get("SEGMENTA_KILL_ROUNDS", "8"))
REPO = Path(__file__).resolve().parents[2]


class Consumer:
    """Reads the log from the offset it kept, as a downstream system would, and checks every event."""

    def __init__(self) -> None:
        self.offset = 0
        self.members: dict[str, set[Any]] = {}

    def read_on(self, segs: Segments) -> int:
        seen = 0
        while page := events.read(segs, after=self.offset):
            for e in page:
                assert e.offset > self.offset, f"offset {e.offset} after {self.offset}"
                self.offset = e.offset
                now = self.members.setdefault(e.segment, set())
                if e.change == "entered":
                    assert e.key not in now, f"duplicate: {e}"
                    now.add(e.key)
                else:
                    assert e.key in now, f"exited without having entered: {e}"
                    now.discard(e.key)
                seen += 1
        return seen


class Workspace:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {**os.environ, "SEGMENTA_WORKSPACE": str(path), "SEGMENTA_NOW": T0, "PYTHONPATH": str(REPO)}
        self.env.pop("SEGMENTA_STORE_URL", None)

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "segmenta", *args]

    def run(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.cmd(*args), env={**self.env, **(extra or {})}, capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def killed(self, args: tuple[str, ...], delay: float, extra: dict[str, str] | None = None) -> int | None:
        """Run ``segmenta ARGS`` and SIGKILL it after ``delay`` seconds; its exit status if it finished first."""
        proc = subprocess.Popen(
            self.cmd(*args), env={**self.env, **(extra or {})}, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)

    def check(self, consumer: Consumer, what: str) -> int:
        """Every live dynamic segment equals a fresh evaluation; the consumer reads on and agrees with the store."""
        with Segments.open(self.path) as segs:
            seen = consumer.read_on(segs)
            live = incremental.live_dynamic(segs)
            for name in ("uk", "clickers", "uk-clickers"):
                stored = segs.members(name)[1]
                assert stored == segs.ws.evaluate(live[name], as_of=clock.now()).keys, f"{what}: {name}"
                assert consumer.members.get(name, set()) == set(stored), f"{what}: {name} replay"
            assert incremental.pending_batches(segs) == [], what
        return seen


@pytest.fixture
def ws(template_ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("SEGMENTA_NOW", T0)
    monkeypatch.delenv("SEGMENTA_STORE_URL", raising=False)
    shutil.copytree(template_ws, tmp_path / "ws")
    w = Workspace(tmp_path / "ws")
    with Segments.open(w.path) as segs:
        for name, definition in (("uk", UK), ("clickers", CLICKERS), ("uk-clickers", UK_CLICKERS)):
            segs.create(definition, name=name)
            segs.publish(name)
    return w


def change_file(path: Path, i: int) -> Path:
    """Round ``i``'s change: contacts moving in and out of the UK, and a click for one of them."""
    rows = [
        {"contactid": 1 + i % 6, "country": "UK" if i % 2 else "FR", "_change_id": f"c{i}"},
        {"contactid": 1 + (i + 3) % 6, "country": "FR" if i % 3 else "UK", "_change_id": f"d{i}"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def click_file(path: Path, i: int) -> Path:
    path.write_text(
        json.dumps({"interactionid": 100 + i, "contactid": 1 + i % 6, "type": "email_click", "_change_id": f"i{i}"}) + "\n"
    )
    return path


def test_a_record_change_killed_at_any_point_loses_and_duplicates_nothing(ws: Workspace, tmp_path: Path) -> None:
    consumer = Consumer()
    ws.check(consumer, "published")
    started = time.monotonic()
    ws.run("records", "upsert", "contact", str(change_file(tmp_path / "measure.ndjson", ROUNDS)))
    duration = time.monotonic() - started  # one run, measured once: the kills are spread over it
    ws.check(consumer, "measured")
    finished = 0
    for i in range(ROUNDS):
        f = (click_file if i % 4 == 3 else change_file)(tmp_path / f"{i}.ndjson", i)
        table = "interaction" if i % 4 == 3 else "contact"
        status = ws.killed(("records", "upsert", table, str(f)), delay=duration * (0.15 + 1.0 * i / ROUNDS))
        finished += status == 0
        ws.run("worker", "--once")
        ws.check(consumer, f"round {i} killed at {i}/{ROUNDS}")
        ws.run("records", "upsert", table, str(f))  # sent again: at least once delivery
        ws.check(consumer, f"round {i} re-sent")
    assert finished < ROUNDS, "every run finished before its kill: no kill landed inside a change"


def test_a_refresh_killed_before_its_commit_leaves_nothing_and_the_next_writes_once(ws: Workspace, tmp_path: Path) -> None:
    consumer = Consumer()
    ws.check(consumer, "published")
    # new data through load (no real-time writes): the refresh has something to do
    contacts = tmp_path / "contact.csv"
    contacts.write_text(
        "contactid,email,country,statecode\n1,a@example.com,FR,0\n2,b@example.com,UK,0\n3,c@example.com,UK,0\n7,g@example.com,UK,0\n",
        encoding="utf-8",
    )
    ws.run("load", "contact", str(contacts))
    marker = tmp_path / "hang"
    proc = subprocess.Popen(ws.cmd("segment", "refresh", "uk"), env={**ws.env, **hang_env(marker)}, cwd=REPO)
    try:
        for _ in range(1200):  # waits for the marker (a bound on a hang, not a timing assertion)
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the refresh never reached its commit"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    with Segments.open(ws.path) as segs:
        assert consumer.read_on(segs) == 0, "a killed refresh's events were seen"
        assert segs.members("uk")[1] == [1, 3, 5]  # as before
    # killed at a delay too, then the next refresh and a worker pass finish the job
    ws.killed(("segment", "refresh", "uk"), delay=0.8)
    ws.run("segment", "refresh", "uk")
    ws.run("worker", "--once")
    assert ws.check(consumer, "refreshed after the kills") > 0
    assert consumer.members["uk"] == {2, 3, 7}


def test_a_publish_killed_mid_way_is_published_once_by_the_next(ws: Workspace, tmp_path: Path) -> None:
    consumer = Consumer()
    ws.check(consumer, "published")
    fr = tmp_path / "fr.json"
    fr.write_text(json.dumps({"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "FR"}}]}))
    ws.run("segment", "create", str(fr), "--name", "fr")
    marker = tmp_path / "hang"
    proc = subprocess.Popen(ws.cmd("segment", "publish", "fr"), env={**ws.env, **hang_env(marker)}, cwd=REPO)
    try:
        for _ in range(1200):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the publish never reached its commit"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    with Segments.open(ws.path) as segs:
        assert consumer.read_on(segs) == 0
    ws.killed(("segment", "publish", "fr"), delay=0.8)
    out = subprocess.run(ws.cmd("segment", "publish", "fr"), env=ws.env, cwd=REPO, capture_output=True, text=True)
    assert out.returncode in (0, 2), out.stderr  # 2: the killed one had published it already
    ws.run("worker", "--once")
    with Segments.open(ws.path) as segs:
        consumer.read_on(segs)
        assert segs.members("fr")[1] == segs.ws.evaluate(fr, as_of=clock.now()).keys == [2, 6]
    assert consumer.members["fr"] == {2, 6}
