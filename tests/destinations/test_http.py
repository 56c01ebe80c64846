"""The HTTP layer's own rules: Retry-After in both forms, bounded attempts, calls in flight held to the limit."""

from __future__ import annotations

import email.utils
import time

import pytest

from segmenta.destinations.base import DestinationError
from segmenta.destinations.http import Client, Limits, retry_after
from tests.destinations.fake_dataverse import FakeAuthority, FakeDataverse


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("7", 1.0) == 7.0
    assert retry_after(" 0.5 ", 1.0) == 0.5
    assert retry_after(None, 1.5) == 1.5
    assert retry_after("soon", 2.0) == 2.0
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert 3000 < retry_after(later, 0.0) <= 3600
    assert retry_after(email.utils.formatdate(time.time() - 60, usegmt=True), 9.0) == 0.0


def test_attempts_are_bounded_and_the_error_names_the_last_answer(authority: FakeAuthority) -> None:
    with FakeDataverse(authority) as dv:
        token = "tok-x"
        authority.tokens[token] = f"{dv.url}/.default"
        dv.faults = [503] * 10
        limits = Limits(max_attempts=3, backoff_seconds=0.0)
        with Client(f"{dv.url}/api/data/v9.2", limits, headers={"Authorization": f"Bearer {token}"}) as client:
            with pytest.raises(DestinationError, match=r"after 3 attempts \(last: HTTP 503\)"):
                client.request("POST", "msdynmkt_AddStaticMembers", json={})
            assert client.stats.calls == 3 and client.stats.retries == 2
        assert dv.faults == [503] * 7
