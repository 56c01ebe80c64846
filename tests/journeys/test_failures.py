"""Send failures: a permanent refusal counts failed and the record goes on; a server that is down keeps it for later."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import free_port
from tests.journeys.conftest import T0, JourneyWs, Sink

TWO = {
    "name": "two",
    "audience": "contact",
    "entry": {"segments": ["uk"]},
    "steps": [
        {"id": "a", "send": {"channel": "email", "subject": "A {firstname}", "body": "."}},
        {"id": "b", "send": {"channel": "email", "subject": "B {firstname}", "body": "."}},
    ],
}


class Picky:
    """Refuses bob@example.com for good (550), accepts the others."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address == "bob@example.com":
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.sink.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture()
def picky() -> Iterator[tuple[str, Sink]]:
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(Picky(sink), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", sink
    finally:
        controller.stop()


def test_a_refused_address_counts_failed_and_the_record_goes_on(jws: JourneyWs, picky: tuple[str, Sink]) -> None:
    jws.smtp_url, sink = picky
    jws.publish_segments("uk")
    jws.run("journey", "create", jws.file("two.json", TWO))
    jws.run("journey", "publish", "two")
    jws.worker(T0)
    r = jws.report("two")
    assert (r["sent"], r["failed"], r["skipped"], r["finished"]) == (4, 2, 2, 4)  # Bob refused twice, Cleo has no address
    assert sorted(str(m["Subject"]) for m in sink.messages) == ["A Ann", "A Eve", "B Ann", "B Eve"]


def test_a_server_that_is_down_is_retried_on_the_next_pass(jws: JourneyWs, sink: Sink) -> None:
    up = jws.smtp_url
    jws.publish_segments("uk")
    jws.run("journey", "create", jws.file("two.json", TWO))
    jws.run("journey", "publish", "two")
    jws.smtp_url = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    result = jws.worker(T0, code=1)
    assert "retried on the next pass" in result.stderr
    r = jws.report("two")
    assert (r["sent"], r["failed"], r["at_step"]["a"]) == (0, 0, 3)
    jws.smtp_url = up
    jws.worker(T0)
    r = jws.report("two")
    assert (r["sent"], r["failed"], r["skipped"], r["finished"]) == (6, 0, 2, 4)
    assert len(sink.messages) == 6
