"""Exactly once across SIGKILL: a real ``segmenta worker --once`` process is killed around its SMTP sends.

The outbox's phases (:mod:`segmenta.services.journeys.outbox`) decide what a restarted worker
does with a message whose process died:

- killed before the SMTP transaction, or after the data but before the final dot: the server
  never accepted the message, the next worker sends it, and the server holds exactly one;
- killed after the server accepted it but before "sent" was committed (the one ambiguous
  window): the engine is at-least-once there, so the server holds two copies, with the SAME
  Message-ID, the second marked ``X-Segmenta-Resend: 1``; a receiver dropping repeated
  Message-IDs sees one.

Either way, no message is lost, every copy of one (record, step) has one Message-ID, and the
report counts each message once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.journeys.conftest import T0, JourneyWs, Sink

PEOPLE = [(10 + i, f"P{i}", f"p{i}@example.com") for i in range(6)]
TWO_SENDS = {
    "name": "twice",
    "audience": "contact",
    "entry": {"segments": ["uk"]},
    "steps": [
        {"id": "first", "send": {"channel": "email", "subject": "First {firstname}", "body": "1"}},
        {"id": "second", "send": {"channel": "email", "subject": "Second {firstname}", "body": "2"}},
    ],
}


def _setup(jws: JourneyWs) -> None:
    jws.upsert(
        [
            {"contactid": k, "firstname": f, "email": e, "country": "UK", "statecode": 0, "purchased": False, "clicked": False}
            for k, f, e in PEOPLE
        ],
        now=T0,
    )
    jws.publish_segments("uk")
    jws.run("journey", "create", jws.file("twice.json", TWO_SENDS))
    jws.run("journey", "publish", "twice")


def _worker(jws: JourneyWs, hang: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, **jws.env(T0), "SEGMENTA_WORKSPACE": str(jws.ws)}
    env.pop("SEGMENTA_TEST_JOURNEY_HANG", None)
    if hang:
        env["SEGMENTA_TEST_JOURNEY_HANG"] = hang
    return subprocess.Popen(
        [sys.executable, "-m", "segmenta", "worker", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_at(proc: subprocess.Popen[str], marker: Path) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the worker never reached the hook: {proc.communicate()}")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _finish(jws: JourneyWs) -> None:
    proc = _worker(jws, None)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


def _check(jws: JourneyWs, sink: Sink, *, ambiguous_kills: int) -> None:
    people = [*PEOPLE, (1, "Ann", "ann@example.com"), (2, "Bob", "bob@example.com"), (5, "Eve", "eve@example.com")]
    expected = {(e, f"{which} {f}") for _, f, e in people for which in ("First", "Second")}
    with sink.lock:
        got = [(str(m["To"]), str(m["Subject"]), str(m["Message-ID"]), m["X-Segmenta-Resend"]) for m in sink.messages]
    assert {(to, subj) for to, subj, _, _ in got} == expected  # nothing lost
    ids: dict[tuple[str, str], set[str]] = {}
    for to, subj, mid, _ in got:
        ids.setdefault((to, subj), set()).add(mid)
    assert all(len(v) == 1 for v in ids.values()), ids  # every copy of a message has its one Message-ID
    assert len({mid for _, _, mid, _ in got}) == len(expected)
    copies = Counter((to, subj) for to, subj, _, _ in got)
    extra = sum(n - 1 for n in copies.values())
    assert extra <= ambiguous_kills  # a second copy only for a kill inside the ambiguous window
    assert sum(1 for *_, resend in got if resend == "1") >= extra  # and it says it is a resend
    report = jws.report("twice")
    assert (report["sent"], report["skipped"]) == (len(expected), 2)  # Cleo has no address, at both steps
    assert report["finished"] == report["entered"] == len(people) + 1
    assert report["at_step"] == {"first": 0, "second": 0}


@pytest.mark.parametrize(("point", "duplicates"), [("before_smtp", 0), ("before_dot", 0), ("after_dot", 1)])
def test_sigkill_around_the_send(jws: JourneyWs, sink: Sink, point: str, duplicates: int) -> None:
    _setup(jws)
    marker = jws.tmp / "hang"
    _kill_at(_worker(jws, f"{point}:{marker}:3"), marker)
    _finish(jws)
    _check(jws, sink, ambiguous_kills=1)
    copies = Counter((str(m["To"]), str(m["Subject"])) for m in sink.messages)
    assert sum(n - 1 for n in copies.values()) == duplicates


def test_sigkill_at_random_moments(jws: JourneyWs, sink: Sink) -> None:
    """Workers killed at random hooks and random message counts, again and again, then one that finishes."""
    _setup(jws)
    rng = random.Random(int(os.environ.get("SEGMENTA_TEST_SEED", "13")))
    ambiguous = 0
    for i in range(int(os.environ.get("SEGMENTA_TEST_KILLS", "6"))):
        marker = jws.tmp / f"hang{i}"
        point = rng.choice(["before_smtp", "before_dot", "after_dot"])
        proc = _worker(jws, f"{point}:{marker}:{rng.randint(1, 3)}")
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            ambiguous += point == "after_dot"
        proc.communicate()
    _finish(jws)
    _check(jws, sink, ambiguous_kills=ambiguous)
