"""Exactly once across SIGKILL for a sequence's automated email, through the journeys' outbox phases:
a real ``segmenta worker --once`` process is killed before the SMTP transaction, before the final dot,
and after the server's 250; the next worker sends what was not accepted once, and resends only in the
one ambiguous window (same Message-ID, ``X-Segmenta-Resend: 1``). Seller activities are never doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.journeys.conftest import Sink
from tests.sequences.conftest import T0, Crm

SEQ = {
    "name": "mail",
    "table": "contact",
    "steps": [
        {"id": "hello", "automated_email": {"subject": "Hello {firstname}", "body": "Hi"}},
        {"id": "call", "phone_call": {"subject": "Call {firstname}"}},
    ],
}


def _worker(crm: Crm, hang: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, "SEGMENTA_NOW": T0, "SEGMENTA_SMTP_URL": crm.smtp_url, "SEGMENTA_WORKSPACE": str(crm.ws)}
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


@pytest.mark.parametrize(("point", "copies_of_bob"), [("before_smtp", 1), ("before_dot", 1), ("after_dot", 2)])
def test_a_killed_worker_resumes_without_loss_or_double_activity(crm: Crm, sink: Sink, point: str, copies_of_bob: int) -> None:
    crm.run("sequence", "create", crm.file("seq", SEQ))
    crm.run("sequence", "connect", "mail", "--segment", "UK leads")
    # activate with no SMTP server reachable: the records start and wait at "hello" (a transient failure)
    crm.smtp_url, url = "smtp://127.0.0.1:9", crm.smtp_url
    crm.run("sequence", "activate", "mail")
    crm.smtp_url = url
    assert len(sink.messages) == 0
    marker = crm.tmp / "marker"
    proc = _worker(crm, f"{point}:{marker}:2")  # the second message: Bob's (Ann's is sent and committed)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the worker never reached the hook: {proc.communicate()}")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    final = _worker(crm, None)
    out, _ = final.communicate(timeout=300)
    assert final.returncode == 0, out
    counts = Counter(str(m["To"]) for m in sink.messages)
    assert counts == {"ann@example.com": 1, "bob@example.com": copies_of_bob}
    ids = {str(m["To"]): {str(x["Message-ID"]) for x in sink.to(str(m["To"]))} for m in sink.messages}
    assert all(len(v) == 1 for v in ids.values())
    if copies_of_bob == 2:
        assert [m["X-Segmenta-Resend"] for m in sink.to("bob@example.com")] == [None, "1"]
    calls = crm.activities()
    assert sorted(a["record"] for a in calls) == ["1", "2", "3"]  # one call each (Cleo's email skipped: no address)
    assert crm.report("mail")["sent"] == 2
