"""Entry, exclusion, exit, waits and their order, each through the CLI with a moving clock and real SMTP."""

from __future__ import annotations

import copy
from typing import Any

from tests.journeys.conftest import T0, WELCOME, JourneyWs, Sink

D = {i: f"2026-10-{i:02d}T12:00:00" for i in range(1, 31)}


def _journey(jws: JourneyWs, data: dict[str, Any], *segments: str) -> None:
    jws.publish_segments(*segments)
    jws.run("journey", "create", jws.file(f"{data['name']}.json", data))
    jws.run("journey", "publish", data["name"])


def _states(jws: JourneyWs, name: str) -> dict[str, tuple[str, str | None]]:
    from segmenta.services.journeys import Journeys
    from segmenta.services.segments import Segments

    with Segments.open(jws.ws) as segs:
        return {r["key"]: (r["status"], r["step"]) for r in Journeys(segs).states(name)}


ONE_WAIT = {
    "name": "w",
    "audience": "contact",
    "entry": {"segments": ["uk"], "exclude": ["do-not-email"]},
    "exit": {"segments": ["purchased"]},
    "steps": [{"id": "pause", "wait": {"hours": 48}}, {"id": "bye", "send": {"channel": "email", "subject": "Bye", "body": "."}}],
}


def test_exclusion_is_checked_at_entry_only(jws: JourneyWs, sink: Sink) -> None:
    _journey(jws, ONE_WAIT, "uk", "do-not-email", "purchased")
    assert "5" not in _states(jws, "w")  # Eve is excluded
    jws.upsert([{"contactid": 1, "firstname": "Eve"}], now=D[2])  # Ann joins do-not-email after entering
    jws.worker(D[2])
    assert _states(jws, "w")["1"] == ("active", "pause")  # she stays in
    jws.worker(D[4])
    assert ("ann@example.com", "Bye") in sink.subjects()


def test_a_new_member_enters_later_and_a_member_no_longer_excluded_enters(jws: JourneyWs) -> None:
    _journey(jws, ONE_WAIT, "uk", "do-not-email", "purchased")
    assert set(_states(jws, "w")) == {"1", "2", "3"}
    jws.upsert([{"contactid": 4, "country": "UK"}, {"contactid": 5, "firstname": "Evelyn"}], now=D[2])
    jws.worker(D[2])
    st = _states(jws, "w")
    assert st["4"] == ("active", "pause") and st["5"] == ("active", "pause")
    assert jws.report("w", now=D[2])["entered"] == 5


def test_exit_fires_while_waiting_and_no_further_step_runs(jws: JourneyWs, sink: Sink) -> None:
    _journey(jws, ONE_WAIT, "uk", "do-not-email", "purchased")
    jws.upsert([{"contactid": 2, "purchased": True}], now=D[2])
    jws.worker(D[5])  # the clock passed the wait too: the exit still wins
    assert _states(jws, "w")["2"] == ("exited", None)
    assert ("bob@example.com", "Bye") not in sink.subjects()
    r = jws.report("w", now=D[5])
    assert (r["exited"], r["finished"], r["sent"], r["skipped"]) == (1, 2, 1, 1)


def test_a_member_of_an_exit_segment_never_runs_a_step(jws: JourneyWs, sink: Sink) -> None:
    jws.upsert([{"contactid": 1, "purchased": True}], now=T0)
    _journey(jws, ONE_WAIT, "uk", "do-not-email", "purchased")
    jws.worker(D[5])
    assert _states(jws, "w")["1"] == ("exited", None)
    assert ("ann@example.com", "Bye") not in sink.subjects()


def test_wait_until_member_times_out_to_no_and_joins_to_yes(jws: JourneyWs, sink: Sink) -> None:
    _journey(jws, WELCOME, "uk", "do-not-email", "purchased", "clickers")
    jws.worker(T0)
    jws.worker(D[4])  # the 3-day wait ended on day 4 at 12:00: all wait for a click until day 11 12:00
    assert jws.report("welcome", now=D[4])["at_step"]["clicked"] == 3
    jws.upsert([{"contactid": 2, "clicked": True}], now=D[11])  # joined exactly at the timeout: in time
    jws.worker(D[11])
    subjects = sink.subjects()
    assert ("bob@example.com", "Thanks") in subjects and ("bob@example.com", "Still there?") not in subjects
    assert ("ann@example.com", "Still there?") in subjects and ("ann@example.com", "Thanks") not in subjects
    assert jws.report("welcome", now=D[11])["finished"] == 3


def test_wait_until_member_already_a_member_goes_on_at_once(jws: JourneyWs, sink: Sink) -> None:
    jws.upsert([{"contactid": 1, "clicked": True}], now=T0)
    _journey(jws, WELCOME, "uk", "do-not-email", "purchased", "clickers")
    jws.worker(D[4])
    assert ("ann@example.com", "Thanks") in sink.subjects()
    assert _states(jws, "welcome")["1"] == ("finished", None)


def test_a_clock_jump_runs_every_step_due_in_between(jws: JourneyWs, sink: Sink) -> None:
    _journey(jws, WELCOME, "uk", "do-not-email", "purchased", "clickers")
    jws.worker(D[20])  # hello at day 1, pause to day 4, timeout day 11 -> nudge
    assert sorted(s for t, s in sink.subjects() if t == "ann@example.com") == ["Hello Ann", "Still there?"]
    r = jws.report("welcome", now=D[20])
    assert (r["finished"], r["sent"], r["skipped"]) == (3, 4, 2)


def test_once_never_reenters(jws: JourneyWs, sink: Sink) -> None:
    _journey(jws, ONE_WAIT, "uk", "do-not-email", "purchased")
    jws.worker(D[4])
    jws.upsert([{"contactid": 1, "country": "FR"}], now=D[5])
    jws.worker(D[5])
    jws.upsert([{"contactid": 1, "country": "UK"}], now=D[6])
    jws.worker(D[6])
    jws.worker(D[9])
    assert [s for t, s in sink.subjects() if t == "ann@example.com"] == ["Bye"]
    assert jws.report("w", now=D[9])["entered"] == 3


def test_reenter_after_leaving_and_rejoining(jws: JourneyWs, sink: Sink) -> None:
    again = copy.deepcopy(ONE_WAIT)
    again["entry"]["frequency"] = "reenter"
    _journey(jws, again, "uk", "do-not-email", "purchased")
    jws.worker(D[4])  # everyone finished
    jws.worker(D[5])
    assert jws.report("w", now=D[5])["entered"] == 3  # finishing does not re-enter a member who stayed
    jws.upsert([{"contactid": 1, "country": "FR"}], now=D[5])
    jws.worker(D[5])
    jws.upsert([{"contactid": 1, "country": "UK"}], now=D[6])
    jws.worker(D[6])
    assert jws.report("w", now=D[6])["entered"] == 4
    jws.worker(D[9])
    assert [s for t, s in sink.subjects() if t == "ann@example.com"] == ["Bye", "Bye"]
    ids = {str(m["Message-ID"]) for m in sink.to("ann@example.com")}
    assert len(ids) == 2  # one message per record, entry and step


def test_entry_rate_limit_lets_in_at_most_n_per_window(jws: JourneyWs) -> None:
    limited = copy.deepcopy(ONE_WAIT)
    limited["entry"]["rate_limit"] = {"max": 2, "per": "hour"}
    _journey(jws, limited, "uk", "do-not-email", "purchased")
    r = jws.report("w")
    assert r["entered"] == 2  # 1 and 2, in key order; 3 waits
    jws.worker("2026-10-01T12:30:00")
    assert jws.report("w")["entered"] == 2
    jws.worker("2026-10-01T13:00:00")
    assert jws.report("w")["entered"] == 3
    assert _states(jws, "w")["3"] == ("active", "pause")


BRANCHED = {
    "name": "tiers",
    "audience": "contact",
    "entry": {"segments": ["uk"]},
    "steps": [
        {
            "id": "which",
            "branch": {
                "branches": [
                    {"when": {"attribute": "tier", "op": "eq", "value": "gold"}, "next": "gold"},
                    {"when": {"attribute": "firstname", "op": "starts_with", "value": "b"}, "next": "b"},
                ],
                "otherwise": "end",
            },
        },
        {"id": "gold", "send": {"channel": "email", "subject": "Gold {firstname}", "body": "."}, "next": "end"},
        {"id": "b", "send": {"channel": "email", "subject": "B {firstname}", "body": "."}},
    ],
}


def test_attribute_branch_takes_the_first_that_holds(jws: JourneyWs, sink: Sink) -> None:
    _journey(jws, BRANCHED, "uk")
    jws.worker(T0)
    assert sink.subjects() == [("ann@example.com", "Gold Ann"), ("bob@example.com", "B Bob"), ("eve@example.com", "Gold Eve")]
    r = jws.report("tiers")
    assert (r["entered"], r["finished"], r["skipped"]) == (4, 4, 1)  # Cleo is gold without an address


def test_pause_holds_everyone_and_resume_catches_up(jws: JourneyWs, sink: Sink) -> None:
    _journey(jws, ONE_WAIT, "uk", "do-not-email", "purchased")
    jws.run("journey", "pause", "w")
    jws.upsert([{"contactid": 4, "country": "UK"}], now=D[2])
    jws.worker(D[4])
    assert sink.messages == [] and "4" not in _states(jws, "w")
    jws.run("segment", "stop", "uk", code=2)  # still in use while paused
    jws.run("journey", "resume", "w")
    jws.worker(D[4])
    assert {t for t, _ in sink.subjects()} == {"ann@example.com", "bob@example.com"}
    assert _states(jws, "w")["4"] == ("active", "pause")
