"""The contract's example journey end to end through the CLI, with a real SMTP server and a moving clock."""

from __future__ import annotations

import pytest

from tests.journeys.conftest import T0, WELCOME, JourneyWs, Sink


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"], indirect=True)
def test_welcome_scenario(jws: JourneyWs, sink: Sink) -> None:
    jws.publish_segments("uk", "do-not-email", "purchased", "clickers")
    jws.run("journey", "create", jws.file("welcome.json", WELCOME))
    jws.run("journey", "publish", "welcome")
    r = jws.report("welcome")
    # uk = 1, 2, 3, 5; 5 is excluded
    assert r["entered"] == 3
    assert r["at_step"]["hello"] == 3
    out = jws.worker(T0).stdout
    assert "journey welcome: +0 entered, 0 exited, 2 sent, 1 skipped, 0 failed, 0 finished" in out
    r = jws.report("welcome")
    assert (r["sent"], r["skipped"]) == (2, 1)
    assert r["at_step"]["pause"] == 3
    assert sink.subjects() == [("ann@example.com", "Hello Ann"), ("bob@example.com", "Hello Bob")]
    assert sink.to("ann@example.com")[0].get_content().strip() == "Welcome, Ann."
    # day 2: Bob purchases -> exits wherever he is
    jws.upsert([{"contactid": 2, "purchased": True}], now="2026-10-03T12:00:00")
    jws.worker("2026-10-03T12:00:00")
    r = jws.report("welcome")
    assert r["exited"] == 1 and r["at_step"]["pause"] == 2
    # day 4: the wait ended; Ann and Cleo wait for a click
    jws.worker("2026-10-04T13:00:00")
    assert jws.report("welcome")["at_step"]["clicked"] == 2
    # day 5: Ann clicks -> thanks
    jws.upsert([{"contactid": 1, "clicked": True}], now="2026-10-05T12:00:00")
    jws.worker("2026-10-05T12:00:00")
    r = jws.report("welcome")
    assert r["at_step"]["clicked"] == 1 and r["finished"] == 1
    assert ("ann@example.com", "Thanks") in sink.subjects()
    # day 12: Cleo's wait timed out -> nudge (no address: skipped) -> end
    jws.worker("2026-10-12T12:00:00")
    r = jws.report("welcome")
    assert r == {
        "entered": 3,
        "exited": 1,
        "finished": 2,
        "sent": 3,
        "skipped": 2,
        "failed": 0,
        "at_step": {"hello": 0, "pause": 0, "clicked": 0, "nudge": 0, "thanks": 0},
    }
    # nothing more is sent however often the worker runs
    jws.worker("2026-10-20T12:00:00")
    assert len(sink.messages) == 3
