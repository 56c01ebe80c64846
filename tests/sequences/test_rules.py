"""Every rule of the sequence file and every limit, through the CLI: exit 2 naming the JSON pointer, nothing saved."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.sequences.conftest import Crm

BASE: dict[str, Any] = {
    "name": "s",
    "table": "contact",
    "steps": [
        {"id": "call", "phone_call": {"subject": "Call"}},
        {"id": "pause", "wait": {"days": 1}},
        {"id": "t", "task": {"subject": "T"}},
    ],
}


def _with(steps: list[dict[str, Any]]) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d["steps"] = steps
    return d


CALL = {"id": "call", "phone_call": {"subject": "Call"}}
BAD = [
    (_with([CALL, {"id": "w", "wait": {"days": 31}}, {"id": "t", "task": {"subject": "T"}}]), "/steps/1/wait", "at most 30 days"),
    (_with([CALL, {"id": "w", "wait": {"days": 2}}]), "/steps/1/wait", "never the last step"),
    (_with([{"id": "a", "advance": {"sequence": "x"}}, CALL]), "/steps/0/advance", "never the first step"),
    (
        _with([CALL, {"id": "a", "advance": {"sequence": "x"}}, {"id": "t", "task": {"subject": "T"}}]),
        "/steps/1/advance",
        "always the last",
    ),
    (
        _with(
            [CALL, {"id": "c", "condition": {"on": "call", "event": "opened", "within": {"days": 1}}, "yes": "end", "no": "end"}]
        ),
        "/steps/1/condition/on",
        "reads an email step",
    ),
    (
        _with(
            [
                {"id": "m", "email": {"subject": "x"}},
                {"id": "c", "condition": {"on": "m", "event": "opened"}, "yes": "end", "no": "end"},
            ]
        ),
        "/steps/1/condition/within",
        "Field required",
    ),
    (
        _with(
            [
                {"id": "m", "email": {"subject": "x"}},
                {"id": "c", "condition": {"on": "m", "event": "read", "within": {"days": 1}}, "yes": "end", "no": "end"},
            ]
        ),
        "/steps/1/condition/event",
        "opened",
    ),
    (
        _with(
            [
                {"id": "m", "email": {"subject": "x"}},
                {"id": "c", "condition": {"on": "m", "event": "opened", "within": {"days": 1}}, "yes": "end"},
            ]
        ),
        "/steps/1",
        '"yes" and "no"',
    ),
    (_with([{"id": "u", "update_field": {"attribute": "nope", "value": 1}}]), "/steps/0/update_field/attribute", "not a column"),
    (_with([{"id": "m", "email": {"subject": "Hi {nickname}"}}]), "/steps/0/email/subject", "{nickname}"),
    (_with([{"id": "m", "email": {"subject": "x"}, "task": {"subject": "y"}}]), "/steps/0", "exactly one of"),
    (_with([CALL, {"id": "call", "task": {"subject": "y"}}]), "/steps/1/id", "ids are unique"),
    (_with([CALL, {"id": "t", "task": {"subject": "y"}, "next": "call"}]), "/steps/1/next", "only forward"),
    ({**BASE, "colour": "red"}, "/colour", "unknown key"),
    ({**BASE, "table": "lead"}, "/table", "not a table"),
]


@pytest.mark.parametrize(("data", "pointer", "words"), BAD)
def test_a_bad_file_exits_2_at_its_pointer_and_saves_nothing(crm: Crm, data: dict[str, Any], pointer: str, words: str) -> None:
    r = crm.run("sequence", "create", crm.file("bad", data), code=2)
    assert pointer in r.stderr and words in r.stderr, r.stderr
    assert crm.json("sequence", "list") == []


def test_the_good_file_is_a_draft_and_shows_as_json(crm: Crm) -> None:
    crm.run("sequence", "create", crm.file("s", BASE))
    assert [(r["name"], r["status"], r["segment"]) for r in crm.json("sequence", "list")] == [("s", "draft", None)]
    show = crm.json("sequence", "show", "s")
    assert show["definition"] == BASE and show["report"]["at_step"] == {"call": 0, "pause": 0, "t": 0}


def test_a_segment_feeds_one_sequence_and_of_its_table(crm: Crm) -> None:
    crm.run("sequence", "create", crm.file("a", {**BASE, "name": "a"}))
    crm.run("sequence", "create", crm.file("b", {**BASE, "name": "b"}))
    crm.run("sequence", "connect", "a", "--segment", "UK leads")
    r = crm.run("sequence", "connect", "b", "--segment", "UK leads", code=2)
    assert "connected to sequence 'a'" in r.stderr
    crm.run("sequence", "connect", "b", "--segment", "UK lead", code=2)  # no such segment (a hint names the right one)
    assert crm.json("sequence", "show", "b")["segment"] is None


def test_at_most_n_active_sequences(crm: Crm) -> None:
    for n in ("a", "b"):
        crm.run("sequence", "create", crm.file(n, {**BASE, "name": n}))
    env = {"SEGMENTA_SEQUENCES_MAX_ACTIVE": "1"}
    crm.run("sequence", "activate", "a", env=env)
    r = crm.run("sequence", "activate", "b", code=2, env=env)
    assert "the limit is 1" in r.stderr
    assert crm.json("sequence", "show", "b")["status"] == "draft"
    crm.run("sequence", "deactivate", "a", env=env)
    crm.run("sequence", "activate", "b", env=env)


def test_the_default_limit_is_250() -> None:
    from segmenta.services.sequences import max_active

    assert max_active() == 250


def test_advance_to_another_sequence_and_start_again_after_leaving(crm: Crm) -> None:
    second = {"name": "second", "table": "contact", "steps": [{"id": "t2", "task": {"subject": "Second {firstname}"}}]}
    first = {
        "name": "first",
        "table": "contact",
        "steps": [{"id": "call", "phone_call": {"subject": "Call"}}, {"id": "on", "advance": {"sequence": "second"}}],
    }
    crm.run("sequence", "create", crm.file("first", first))
    crm.run("sequence", "connect", "first", "--segment", "UK leads")
    r = crm.run("sequence", "activate", "first", code=2)  # its advance target does not exist yet
    assert "/steps/1/advance/sequence" in r.stderr
    crm.run("sequence", "create", crm.file("second", second))
    crm.run("sequence", "activate", "second")
    crm.run("sequence", "activate", "first")
    acts = {a["record"]: a for a in crm.activities()}
    crm.run("sequence", "done", str(acts["1"]["id"]))
    crm.run("sequence", "done", str(acts["1"]["id"]), code=2)  # done once
    assert [(a["record"], a["subject"]) for a in crm.activities() if a["sequence"] == "second"] == [("1", "Second Ann")]
    assert crm.report("first")["finished"] == 1 and crm.report("second")["running"] == 1
    # Ann leaves the segment (her second-sequence task is cancelled), then comes back: first starts again
    crm.upsert([{"contactid": 1, "country": "FR"}])
    crm.run("worker", "--once")
    assert crm.report("second")["ended"] == 1 and [a for a in crm.activities() if a["record"] == "1"] == []
    crm.upsert([{"contactid": 1, "country": "UK"}], now="2026-10-01T10:00:00")
    crm.run("worker", "--once", now="2026-10-01T10:00:00")
    assert [a["subject"] for a in crm.activities(now="2026-10-01T10:00:00") if a["record"] == "1"] == ["Call"]


def test_due_today_overdue_and_a_skipped_email_takes_no(crm: Crm) -> None:
    seq = {
        "name": "later",
        "table": "contact",
        "steps": [
            {"id": "m", "email": {"subject": "Write {firstname}", "due": {"days": 1}}},
            {"id": "c", "condition": {"on": "m", "event": "replied", "within": {"days": 3}}, "yes": "end", "no": "t"},
            {"id": "t", "task": {"subject": "Nudge {firstname}"}},
        ],
    }
    crm.run("sequence", "create", crm.file("later", seq))
    crm.run("sequence", "connect", "later", "--segment", "UK leads")
    crm.run("sequence", "activate", "later")
    assert crm.activities() == []  # due tomorrow
    tomorrow = crm.activities(now="2026-10-02T08:00:00")
    assert sorted(a["subject"] for a in tomorrow) == ["Write Ann", "Write Bob", "Write Cleo"]
    assert not any(a["overdue"] for a in tomorrow)
    late = crm.activities(now="2026-10-03T08:00:00")
    assert all(a["overdue"] for a in late) and len(late) == 3
    by = {a["record"]: a["id"] for a in late}
    crm.run("sequence", "done", str(by["1"]), "--skip", now="2026-10-03T08:00:00")  # skipped: the condition takes no at once
    crm.run("sequence", "done", str(by["2"]), now="2026-10-03T08:00:00")
    crm.run("sequence", "track", str(by["2"]), "replied", now="2026-10-03T09:00:00")  # replied: yes -> end
    left = crm.activities(now="2026-10-03T09:00:00")
    assert sorted(a["subject"] for a in left) == ["Nudge Ann", "Write Cleo"]
    assert crm.report("later", now="2026-10-03T09:00:00")["finished"] == 1
    crm.run("sequence", "track", str(by["3"]), "bounced", code=2)


def test_simulate_shows_each_record_path_and_changes_nothing(crm: Crm, sink: Any) -> None:
    from tests.sequences.test_flow import FOLLOW_UP

    crm.run("sequence", "create", crm.file("seq", FOLLOW_UP))
    crm.run("sequence", "connect", "follow-up", "--segment", "UK leads")
    sim = json.loads(crm.run("sequence", "simulate", "follow-up").stdout)
    paths = {r["record"]: [(p["step"], p["at"]) for p in r["path"]] for r in sim["records"]}
    assert sorted(paths) == ["1", "2", "3"]
    t0 = "2026-10-01T09:00:00"
    assert paths["1"] == [("call", t0), ("intro", t0), ("opened", t0), ("task", "2026-10-03T09:00:00")]
    assert paths["3"] == [("call", t0), ("intro", t0), ("opened", t0), ("task", t0)]  # no address: skipped -> no at once
    assert len(sink.messages) == 0 and crm.activities() == []
    assert crm.json("sequence", "show", "follow-up")["status"] == "draft"
