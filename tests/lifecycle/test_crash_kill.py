"""SIGKILLs at random moments during refreshes: afterwards ``show`` agrees with ``members`` (issue 9 item 5).

A small driver process (this module run as ``python -m``) imports segmenta once and forks
a child per kill; the child refreshes the segment in a loop, with a moving clock so that
every refresh changes the membership, until the test SIGKILLs it at a random moment.
After each kill the test opens the workspace as any user would (which reconciles the
store with the membership) and checks that:

- ``segment show``'s size equals the number of ``segment members``;
- no refresh run is left ``running``;
- the finished runs account for the membership: the sum of entered minus exited is its size.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT
from tests.lifecycle.conftest import Lifecycle, engine_workspace

#: The driver forks children that refresh; a process holding Spark's JVM gateway cannot fork, so Spark
#: is not among this module's engines (its killed refresh is tests/spark/test_spark_lifecycle.py's).
SPARK_CASES: tuple[str, ...] = ()
KILLS = 50
#: Fails the test if the kills take longer than this (CI runs it).
BUDGET_S = 240.0
CONTACTS = 60_000
START = dt.datetime(2026, 1, 1)
MODEL = {"tables": {"contact": {"key": "contactid", "columns": {"contactid": {"type": "integer"}, "signup": {"type": "date"}}}}}
RECENT = {
    "name": "Recent",
    "audience": "contact",
    "groups": [{"where": {"attribute": "signup", "op": "in_last", "value": {"days": 60}}}],
}


def _now(i: int) -> str:
    return (START + dt.timedelta(days=30 + (i * 7) % 300, hours=i % 24)).isoformat()


def _build(ws: Any, scratch: Path) -> None:
    """CONTACTS contacts whose signups spread over a year."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(7)
    signups = [START.date() + dt.timedelta(days=rng.randrange(330)) for _ in range(CONTACTS)]
    pq.write_table(pa.table({"contactid": list(range(1, CONTACTS + 1)), "signup": signups}), scratch / "contact.parquet")
    ws.load("contact", scratch / "contact.parquet")


@pytest.fixture()
def crash_life(engine_name: str, store_url: str | None, tmp_path: Path, request: pytest.FixtureRequest) -> Lifecycle:
    """A workspace of CONTACTS contacts on the engine under test, and a live segment of recent ones."""
    from segmenta.model.schema import Model

    ws = engine_workspace(request, engine_name, tmp_path / "ws", "crash-kill", Model.from_data(MODEL), _build)
    life = Lifecycle(ws=ws, store=store_url, tmp=tmp_path, runner=CliRunner())
    life.run("segment", "create", life.definition("recent", RECENT))
    life.run("segment", "publish", "Recent", now=_now(0))
    return life


class Driver:
    """The forking driver: ``go`` forks a refreshing child (answers its pid), ``reap PID`` answers its wait status."""

    def __init__(self, life: Lifecycle) -> None:
        self.stderr = (life.tmp / "driver.err").open("w+")
        self.progress = life.tmp / "progress"
        self.progress.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.lifecycle.test_crash_kill", str(life.ws), str(self.progress), life.store or ""],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "SEGMENTA_NOW"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        assert self._ask(None) == "ready", self.errors()

    def _ask(self, line: str | None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def fork(self, seed: int) -> int:
        return int(self._ask(f"go {seed}"))

    def refreshes(self) -> list[float]:
        """When each child's refresh finished (monotonic clock), in order."""
        return [float(t) for t in self.progress.read_text().split()]

    def cycle(self) -> float:
        """Seconds one refresh takes in a child (a child's four refreshes, timed; it is then killed)."""
        pid = self.fork(0)
        deadline = time.monotonic() + 120
        while len(self.refreshes()) < 4:
            assert time.monotonic() < deadline, f"no refreshes within 120 s: {self.errors()}"
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        self.reap(pid)
        done = self.refreshes()[:4]
        return (done[3] - done[0]) / 3

    def fork_dying_after_commit(self) -> int:
        """A child that SIGKILLs itself right after its membership commit, before the store hears of it."""
        return int(self._ask("gap 0"))

    def reap(self, pid: int) -> int:
        return int(self._ask(f"reap {pid}"))

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        self.stderr.close()


def _check(life: Lifecycle, kill: int) -> dict[str, Any]:
    """The invariants, read as a user would: one open of the workspace (which reconciles), then show/members/history."""
    from segmenta.services.segments import Segments

    with Segments.open(life.ws, store_url=life.store) as segs:
        info, (_, members), runs = segs.show("Recent"), segs.members("Recent"), segs.history("Recent")
    where = f"after kill {kill}: {info} / runs {runs[-3:]}"
    assert info["size"] == len(members), where
    assert [r for r in runs if r["status"] == "running"] == [], where
    done = [r for r in runs if r["status"] == "done"]
    assert sum(r["entered"] - r["exited"] for r in done) == len(members), where
    assert done[-1]["size"] == len(members), where
    return runs[-1] if runs else {}


def test_random_sigkills_during_refreshes_never_split_show_from_members(crash_life: Lifecycle) -> None:
    life = crash_life
    rng = random.Random(20261201)
    driver = Driver(life)
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    try:
        cycle = driver.cycle()
        _check(life, -1)
        for kill in range(KILLS):
            pid = driver.fork(rng.randrange(1 << 30))
            time.sleep(rng.uniform(0.0, 2 * cycle))  # anywhere in the child's first two refreshes
            os.kill(pid, signal.SIGKILL)
            status = driver.reap(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, driver.errors()
            last = _check(life, kill)
            label = f"{last.get('status')}:{(last.get('message') or '')[:11]}"
            outcomes[label] = outcomes.get(label, 0) + 1
            assert time.monotonic() - started < BUDGET_S, f"{kill + 1} kills took over {BUDGET_S} s"
    finally:
        driver.close()
    # after all that, refreshes carry on as usual
    life.run("segment", "refresh", "Recent", now=_now(999))
    _check(life, KILLS)
    assert list((life.ws / ".runs").glob("*.lock")) == []  # no dead owner's lock file is left behind
    print(f"one refresh: {cycle * 1000:.0f} ms; last run after each of {KILLS} kills: {outcomes}")


def test_a_kill_between_the_membership_commit_and_the_store_is_reconciled_from_the_membership(
    crash_life: Lifecycle,
) -> None:
    life = crash_life
    before = life.json("segment", "show", "Recent")
    driver = Driver(life)
    try:
        status = driver.reap(driver.fork_dying_after_commit())
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, driver.errors()
    finally:
        driver.close()
    last = _check(life, 0)  # the open reconciles: size from the membership's record of the run
    assert (last["status"], last["message"]) == ("done", None)
    info = life.json("segment", "show", "Recent")  # and through the CLI
    assert info["status"] == "live" and info["size"] == last["size"] != before["size"]
    assert info["last_refresh_at"] != before["last_refresh_at"]


def _driver(workspace: str, progress: str, store_url: str) -> None:  # pragma: no cover - runs in the driver
    from segmenta.services.segments import Segments

    with Segments.open(workspace, store_url=store_url or None) as segs:
        segs.show("Recent")  # imports and store checks done once, here: the children start warm
    print("ready", flush=True)
    for line in sys.stdin:
        command, arg = line.split()
        if command == "reap":
            _, status = os.waitpid(int(arg), 0)
            print(status, flush=True)
            continue
        pid = os.fork()
        if pid:
            print(pid, flush=True)
            continue
        if command == "gap":
            from segmenta.services.lifecycle_base import SegmentsBase

            def die(*_: Any) -> None:
                os.kill(os.getpid(), signal.SIGKILL)

            SegmentsBase._finish_run = die  # type: ignore[method-assign]
        try:  # the child: refresh until killed
            step = random.Random(int(arg)).randrange(1000)
            while True:
                step += 1
                os.environ["SEGMENTA_NOW"] = _now(step)
                with Segments.open(workspace, store_url=store_url or None) as segs:
                    segs.refresh("Recent")
                with open(progress, "a", encoding="utf-8") as fh:
                    fh.write(f"{time.monotonic()}\n")
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(3)


if __name__ == "__main__":
    _driver(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
