"""A worker pass advances journeys (in-process, as ``serve``'s scheduler does), and one journey has one worker at a time."""

from __future__ import annotations

import pytest

from segmenta.membership.owners import RunOwner
from tests.journeys.conftest import T0, WELCOME, JourneyWs, Sink


def test_a_worker_pass_with_the_services_segments_advances_journeys(
    jws: JourneyWs, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmenta.services.segments import Segments
    from segmenta.services.worker import Worker

    jws.publish_segments("uk", "do-not-email", "purchased", "clickers")
    jws.run("journey", "create", jws.file("welcome.json", WELCOME))
    jws.run("journey", "publish", "welcome")
    monkeypatch.setenv("SEGMENTA_NOW", T0)
    monkeypatch.setenv("SEGMENTA_SMTP_URL", jws.smtp_url)
    worker = Worker(jws.ws, segments=lambda: Segments.open(jws.ws))
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert report.failed == []
    [done] = report.journeys
    assert (done.journey, done.sent, done.skipped) == ("welcome", 2, 1)
    assert len(sink.messages) == 2


def test_a_journey_held_by_a_live_worker_is_skipped_by_another(
    jws: JourneyWs, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from segmenta.services.journeys import Journeys
    from segmenta.services.segments import Segments
    from segmenta.store.journey_models import Journey

    jws.publish_segments("uk", "do-not-email", "purchased", "clickers")
    jws.run("journey", "create", jws.file("welcome.json", WELCOME))
    jws.run("journey", "publish", "welcome")
    monkeypatch.setenv("SEGMENTA_NOW", T0)
    monkeypatch.setenv("SEGMENTA_SMTP_URL", jws.smtp_url)
    with Segments.open(jws.ws) as segs, RunOwner(jws.ws) as other:
        journeys = Journeys(segs)
        assert journeys._claim(1, other.message)  # another worker (alive: it holds its lock) has the journey
        assert journeys.advance("welcome").busy
        assert sink.messages == []
    # that worker died (its lock is gone): its lease does not hold the journey any more
    with Segments.open(jws.ws) as segs:
        done = Journeys(segs).advance("welcome")
        assert not done.busy and done.sent == 2
        with segs.store.session() as s:
            assert s.scalar(select(Journey.lease_owner)) is None  # released after the pass
