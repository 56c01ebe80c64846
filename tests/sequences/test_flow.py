"""A sequence end to end through the CLI: started by work assignment, seller activities, a real SMTP send,
a condition, a wait in logical time, a field update through records upsert, and the end on leaving."""

from __future__ import annotations

from typing import Any

import pytest

from tests.journeys.conftest import Sink
from tests.sequences.conftest import Crm

FOLLOW_UP: dict[str, Any] = {
    "name": "follow-up",
    "table": "contact",
    "steps": [
        {"id": "call", "phone_call": {"subject": "Call {firstname}"}},
        {"id": "intro", "automated_email": {"subject": "Hello {firstname}", "body": "Nice to talk, {firstname}."}},
        {"id": "opened", "condition": {"on": "intro", "event": "opened", "within": {"days": 2}}, "yes": "mark", "no": "task"},
        {"id": "task", "task": {"subject": "Follow up {firstname}"}, "next": "end"},
        {"id": "mark", "update_field": {"attribute": "stage", "value": "engaged"}, "next": "pause"},
        {"id": "pause", "wait": {"days": 3}},
        {"id": "mail", "email": {"subject": "Proposal for {firstname}"}},
    ],
}


def _by_record(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["record"]: r for r in rows}


@pytest.mark.parametrize("seq_store", ["sqlite", "postgres"], indirect=True)
def test_sequence_from_assignment_to_the_end(crm: Crm, sink: Sink) -> None:
    crm.run("sequence", "create", crm.file("seq", FOLLOW_UP))
    crm.run("sequence", "connect", "follow-up", "--segment", "UK leads")
    crm.run("sequence", "activate", "follow-up")
    assert crm.report("follow-up")["at_step"]["call"] == 3
    calls = _by_record(crm.activities())
    assert sorted(calls) == ["1", "2", "3"]
    assert calls["1"]["subject"] == "Call Ann" and calls["1"]["kind"] == "phone_call" and calls["1"]["seller"] == "7"
    assert crm.activities(seller="8") == []
    # the seller's calls: done -> the automated email goes out through real SMTP, once
    for key in ("1", "2", "3"):
        crm.run("sequence", "done", str(calls[key]["id"]))
    assert sink.subjects() == [("ann@example.com", "Hello Ann"), ("bob@example.com", "Hello Bob")]
    assert all(m["Message-ID"].startswith("<s") for m in sink.messages)
    report = crm.report("follow-up")
    assert report["at_step"]["opened"] == 2 and report["at_step"]["task"] == 1  # Cleo had no address: skipped -> no
    crm.run("worker", "--once", now="2026-10-01T10:00:00")
    assert len(sink.messages) == 2  # nothing sent twice
    # Ann opens her email the next day: yes -> stage engaged (through records upsert) -> 3-day wait
    show = crm.json("sequence", "show", "follow-up")
    assert show["report"]["at_step"]["opened"] == 2
    ids = _email_ids(crm)  # the automated emails' activity ids (no seller's list shows them)
    crm.run("sequence", "track", str(ids["1"]), "opened", now="2026-10-02T08:00:00")
    assert crm.report("follow-up", now="2026-10-02T08:00:00")["at_step"]["pause"] == 1
    row = crm.json("assignment", "show", "contact", "1", now="2026-10-02T08:00:00")
    assert row["segment"] == "UK leads"
    assert _stages(crm) == {1: "engaged", 2: "new", 3: "new", 4: "new"}  # written through records upsert
    # Bob never opens: at the time limit (2 days after arrival) he goes to the task
    crm.run("worker", "--once", now="2026-10-04T09:00:00")
    tasks = _by_record(crm.activities(now="2026-10-04T09:00:00"))
    assert {k: v["kind"] for k, v in tasks.items()} == {"2": "task", "3": "task"}
    assert tasks["3"]["overdue"] and tasks["2"]["due_at"] == "2026-10-03T09:00:00"
    # Ann's wait ended at 2026-10-05T08:00 (logical time): the seller's email is due then
    crm.run("worker", "--once", now="2026-10-09T12:00:00")
    mails = [a for a in crm.activities(now="2026-10-09T12:00:00") if a["kind"] == "email"]
    assert [(m["record"], m["due_at"]) for m in mails] == [("1", "2026-10-05T08:00:00")]
    # Bob leaves the segment (moves to FR): his sequence ends, his open task is cancelled
    crm.upsert([{"contactid": 2, "country": "FR"}], now="2026-10-09T12:00:00")
    crm.run("worker", "--once", now="2026-10-09T12:00:00")
    states = {s["key"]: s for s in _states(crm)}
    assert states["2"]["status"] == "ended" and states["2"]["reason"] == "left segment"
    assert "2" not in _by_record(crm.activities(now="2026-10-09T12:00:00"))
    # Ann goes inactive: ended too
    crm.upsert([{"contactid": 1, "statecode": 1}], now="2026-10-09T12:00:00")
    crm.run("worker", "--once", now="2026-10-09T12:00:00")
    states = {s["key"]: s for s in _states(crm)}
    assert states["1"]["status"] == "ended" and states["1"]["reason"] == "inactive"


def _stages(crm: Crm) -> dict[int, str]:
    from sqlglot import exp

    from segmenta.services.segments import Segments

    with Segments.open(crm.ws, store_url=crm.store) as segs:
        q = exp.select(exp.column("contactid", quoted=True), exp.column("stage", quoted=True)).from_(
            exp.Table(this=exp.to_identifier("contact", quoted=True))
        )
        return {int(r["contactid"]): str(r["stage"]) for r in segs.ws.engine.run(q).to_pylist()}


def _states(crm: Crm) -> list[dict[str, Any]]:
    from segmenta.services.segments import Segments
    from segmenta.services.sequences import Sequences

    with Segments.open(crm.ws, store_url=crm.store) as segs:
        return Sequences(segs).states("follow-up")


def _email_ids(crm: Crm) -> dict[str, int]:
    from sqlalchemy import select

    from segmenta.services.segments import Segments
    from segmenta.store.sequence_models import SequenceActivity

    with Segments.open(crm.ws, store_url=crm.store) as segs, segs.store.session() as s:
        rows = s.execute(
            select(SequenceActivity.record_key, SequenceActivity.id).where(SequenceActivity.kind == "automated_email")
        ).all()
        return {k: int(i) for k, i in rows}
