"""``segmenta events tail`` exactly as contract 5.2, and the Python API's subscribers.

On the lifecycle tests' small CRM (DuckDB, the workspace's SQLite store), driven through the CLI:
every kind of membership write (publish, refresh, list create and import, record changes) emits
its events, a refresh with nothing to change emits none, and the printed lines are the contract's
objects in strictly increasing offset order. ``--follow`` runs as a real process and prints an
event another process commits.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segmenta.services import events, records
from segmenta.services.segments import Segments
from tests.lifecycle.conftest import CONTACTS, T0, Lifecycle, write_csv

UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
CONTRACT_FIELDS = {"offset", "segment", "key", "change", "at", "cause"}


@pytest.fixture
def life(template_ws: Path, tmp_path: Path) -> Lifecycle:
    """A copy of the small CRM on DuckDB with its own SQLite store (one engine is enough: the log's reading is shared)."""
    shutil.copytree(template_ws, tmp_path / "ws")
    return Lifecycle(ws=tmp_path / "ws", store=None, tmp=tmp_path, runner=CliRunner())


def tail(life: Lifecycle, *args: str, code: int = 0) -> list[dict[str, Any]]:
    out = life.run("events", "tail", "--json", *args, code=code).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def ndjson(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def replay(lines: list[dict[str, Any]], segment: str) -> set[Any]:
    members: set[Any] = set()
    for e in lines:
        if e["segment"] == segment:
            (members.add if e["change"] == "entered" else members.discard)(e["key"])
    return members


def test_every_membership_write_emits_its_events_in_the_contract_shape(life: Lifecycle) -> None:
    assert tail(life) == []
    life.run("segment", "create", life.definition("uk", UK), "--name", "uk")
    life.run("segment", "publish", "uk")
    published = tail(life)
    assert [(e["segment"], e["key"], e["change"]) for e in published] == [
        ("uk", 1, "entered"),
        ("uk", 3, "entered"),
        ("uk", 5, "entered"),
    ]
    for e in published:
        assert set(e) >= CONTRACT_FIELDS, e
        assert isinstance(e["offset"], int) and isinstance(e["cause"], dict)
        dt.datetime.fromisoformat(e["at"])  # ISO 8601
        assert e["cause"].get("kind") == "publish", e["cause"]

    # a refresh that finds nothing to change emits nothing
    life.run("segment", "refresh", "uk")
    assert tail(life) == published

    # a record change: its events, caused by the change (its id named)
    change = ndjson(life.tmp / "c.ndjson", [{"contactid": 2, "country": "UK", "_change_id": "ch-1"}])
    life.run("records", "upsert", "contact", change)
    moved = tail(life, "--from", str(published[-1]["offset"]))
    assert [(e["segment"], e["key"], e["change"]) for e in moved] == [("uk", 2, "entered")]
    assert moved[0]["cause"]["kind"] == "records" and "ch-1" in json.dumps(moved[0]["cause"])

    # a load, then a refresh: the refresh emits exactly the difference
    rows = [(1, "ann@example.com", "FR", 0), *CONTACTS[1:], (7, "new@example.com", "UK", 0)]
    rows = [(2, "BOB@example.com", "UK", 0) if r[0] == 2 else r for r in rows]
    life.run("load", "contact", str(write_csv(life.tmp / "contact.csv", ["contactid", "email", "country", "statecode"], rows)))
    life.run("segment", "refresh", "uk")
    refreshed = tail(life, "--from", str(moved[-1]["offset"]))
    assert sorted((e["key"], e["change"]) for e in refreshed) == [(1, "exited"), (7, "entered")]
    assert {e["cause"].get("kind") for e in refreshed} == {"refresh"}

    # a list: created empty (no event), then an import adds its members
    life.run("segment", "create", "--list", "--audience", "contact", "--name", "vip")
    emails = life.tmp / "vip.csv"
    emails.write_text("Email\nANN@example.com\ncleo@example.com\nnobody@example.com\n", encoding="utf-8")
    counted = json.loads(life.run("segment", "import-csv", "vip", str(emails), "--json").stdout)
    assert counted["members"] == 2
    vip = tail(life, "--segment", "vip")
    assert sorted((e["key"], e["change"]) for e in vip) == [(1, "entered"), (3, "entered")]

    every = tail(life)
    offsets = [e["offset"] for e in every]
    assert offsets == sorted(set(offsets)), "offsets increase strictly"
    assert replay(every, "uk") == set(life.members("uk")) == {2, 3, 5, 7}
    assert replay(every, "vip") == set(life.members("vip"))
    # --from N starts just after N; --segment keeps that segment's events, in order
    middle = offsets[len(offsets) // 2]
    assert tail(life, "--from", str(middle)) == [e for e in every if e["offset"] > middle]
    assert tail(life, "--segment", "uk") == [e for e in every if e["segment"] == "uk"]
    assert tail(life, "--from", str(offsets[-1])) == []
    # the text form: one line per event
    text = life.run("events", "tail").stdout.splitlines()
    assert len(text) == len(every) and all(str(e["offset"]) in line for e, line in zip(every, text, strict=True))


def test_an_unknown_segment_exits_2_naming_it(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK), "--name", "uk")
    result = life.run("events", "tail", "--segment", "no-such-segment", code=2)
    assert "no-such-segment" in result.stdout + result.stderr
    result = life.run("events", "tail", "--segment", "UK", code=2)  # names are exact; the hint names the near one
    assert "UK" in result.stdout + result.stderr


def test_follow_prints_an_event_another_process_commits(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK), "--name", "uk")
    life.run("segment", "publish", "uk")
    last = tail(life)[-1]["offset"]
    env = {**life.cli_env(), "SEGMENTA_NOW": T0}
    errors = (life.tmp / "follower.err").open("w")
    follower = subprocess.Popen(
        [sys.executable, "-m", "segmenta", "events", "tail", "--follow", "--json", "--from", str(last), "--poll", "0.1"],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in follower.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        change = ndjson(life.tmp / "c.ndjson", [{"contactid": 6, "country": "UK"}])
        done = subprocess.run(
            [sys.executable, "-m", "segmenta", "records", "upsert", "contact", change], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        try:
            line = lines.get(timeout=60)  # a bound on a hang, not a timing assertion
        except queue.Empty:
            raise AssertionError(f"the follower printed nothing: {(life.tmp / 'follower.err').read_text()}") from None
        event = json.loads(line)
        assert (event["segment"], event["key"], event["change"]) == ("uk", 6, "entered")
        assert event["offset"] > last
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=30)
        reader.join(timeout=30)
        if follower.stdout is not None:
            follower.stdout.close()
        errors.close()


def test_python_subscribers_get_the_events_after_commit(life: Lifecycle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTA_NOW", T0)
    os.environ.pop("SEGMENTA_STORE_URL", None)
    with Segments.open(life.ws) as segs:
        segs.create(UK, name="uk")
        got: list[tuple[int, str, Any, str, bool]] = []

        def callback(batch: list[events.Event]) -> None:
            # after commit: each event is already readable from the log
            committed = {e.offset for e in events.read(segs, after=min(e.offset for e in batch) - 1)} if batch else set()
            got.extend((e.offset, e.segment, e.key, e.change, e.offset in committed) for e in batch)

        unsubscribe = segs.subscribe(callback)
        segs.publish("uk")
        change = ndjson(
            life.tmp / "c.ndjson", [{"contactid": 1, "country": "FR"}, {"contactid": 4, "statecode": 0, "country": "UK"}]
        )
        records.upsert(segs, "contact", change)
        unsubscribe()
        records.upsert(segs, "contact", ndjson(life.tmp / "d.ndjson", [{"contactid": 3, "country": "FR"}]))
        logged = events.read(segs)
    assert [(o, s, k, c) for o, s, k, c, _ in got] == [(e.offset, e.segment, e.key, e.change) for e in logged[:-1]]
    assert all(seen for *_, seen in got)
    pairs = [(e.key, e.change) for e in logged]
    assert pairs[:3] == [(1, "entered"), (3, "entered"), (5, "entered")]
    assert sorted(pairs[3:5]) == [(1, "exited"), (4, "entered")]  # one write: its entered first, then its exited
    assert pairs[5:] == [(3, "exited")]
