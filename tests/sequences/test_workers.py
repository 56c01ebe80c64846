"""Several workers on one PostgreSQL store: two ``segmenta worker --once`` processes advance the same
sequence at once; its lease lets one at a time, so every automated email goes out once and every
seller activity is created once."""

from __future__ import annotations

import os
import subprocess
import sys
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
PEOPLE = [
    {"contactid": 100 + i, "firstname": f"P{i}", "email": f"p{i}@example.com", "country": "UK", "statecode": 0} for i in range(20)
]


@pytest.mark.parametrize("seq_store", ["postgres"], indirect=True)
def test_two_workers_share_a_sequence_without_doubles(crm: Crm, sink: Sink) -> None:
    assert crm.store is not None
    crm.upsert(PEOPLE)
    crm.run("sequence", "create", crm.file("seq", SEQ))
    crm.run("sequence", "connect", "mail", "--segment", "UK leads")
    crm.smtp_url, url = "smtp://127.0.0.1:9", crm.smtp_url  # activate while the server is unreachable: all wait at hello
    crm.run("sequence", "activate", "mail")
    crm.smtp_url = url
    env = {
        **os.environ,
        "SEGMENTA_NOW": T0,
        "SEGMENTA_SMTP_URL": url,
        "SEGMENTA_WORKSPACE": str(crm.ws),
        "SEGMENTA_STORE": crm.store,
    }
    cmd = [sys.executable, "-m", "segmenta", "--store", crm.store, "worker", "--once"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    last = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert last.returncode == 0, last.stdout + last.stderr
    counts = Counter(str(m["To"]) for m in sink.messages)
    assert set(counts.values()) == {1} and len(counts) == 22  # Ann, Bob and the 20 (Cleo has no address)
    calls = Counter(a["record"] for a in crm.activities())
    assert set(calls.values()) == {1} and len(calls) == 23
