"""Sign-in is throttled per account and per client address, with a delay that grows; audited, aggregated."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from segmenta.errors import RejectedInput
from segmenta.interfaces.api.app import create_app
from tests.api.conftest import PASSWORD, Api


class Clock:
    """The wall clock the throttle reads, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 12, 0, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(api: Api) -> Clock:
    fake = Clock()
    api.service.users.clock = fake
    return fake


def _login(api: Api, username: str, password: str, client: TestClient | None = None) -> int:
    return (client or api.client).post("/api/auth/login", json={"username": username, "password": password}).status_code


def test_200_wrong_passwords_are_not_all_processed_and_the_right_one_waits(api: Api, clock: Clock) -> None:
    codes = Counter(_login(api, "mark", f"guess number {i}") for i in range(200))
    assert codes[401] == 5 and codes[429] == 195, codes  # only the first five were checked at all
    refused = api.client.post("/api/auth/login", json={"username": "mark", "password": PASSWORD})
    assert refused.status_code == 429  # the right password, during the lockout, is refused too
    assert int(refused.headers["retry-after"]) >= 1
    assert "try again in" in refused.json()["error"]["message"]
    assert "set-cookie" not in refused.headers
    clock.advance(int(refused.headers["retry-after"]))
    assert _login(api, "mark", PASSWORD) == 200


def test_the_delay_doubles_with_each_failure_up_to_the_cap(api: Api, clock: Clock) -> None:
    for _ in range(5):
        assert _login(api, "mark", "wrong wrong") == 401
    waits = []
    for _ in range(14):
        response = api.client.post("/api/auth/login", json={"username": "mark", "password": "wrong wrong"})
        assert response.status_code == 429
        wait = int(response.headers["retry-after"])
        waits.append(wait)
        clock.advance(wait)
        assert _login(api, "mark", "wrong wrong") == 401  # one more guess after each wait
    assert waits[:6] == [1, 2, 4, 8, 16, 32]
    assert max(waits) == 900 and waits[-1] == 900  # capped at 15 minutes


def test_a_success_starts_the_account_s_count_again(api: Api, clock: Clock) -> None:
    for _ in range(4):
        assert _login(api, "mark", "wrong wrong") == 401
    assert _login(api, "mark", PASSWORD) == 200
    for _ in range(4):
        assert _login(api, "mark", "wrong wrong") == 401
    assert _login(api, "mark", PASSWORD) == 200


def test_other_accounts_still_sign_in_while_one_is_locked(api: Api, clock: Clock) -> None:
    for _ in range(6):
        _login(api, "mark", "wrong wrong")
    assert _login(api, "mark", PASSWORD) == 429
    assert _login(api, "olga", PASSWORD) == 200


def test_one_address_guessing_many_accounts_is_throttled(api: Api, clock: Clock) -> None:
    codes = Counter(_login(api, f"user{i}", "wrong wrong") for i in range(60))
    assert codes[401] == 20 and codes[429] == 40, codes  # 4x the per-account allowance, then the address waits
    assert _login(api, "olga", PASSWORD) == 429  # from the same address, until its delay passes
    clock.advance(2)
    assert _login(api, "olga", PASSWORD) == 200


def test_unknown_and_known_accounts_are_throttled_alike(api: Api, clock: Clock) -> None:
    known = [_login(api, "mark", "wrong wrong") for _ in range(7)]
    unknown = [_login(api, "nobody-here", "wrong wrong") for _ in range(7)]
    assert known == unknown == [401] * 5 + [429] * 2  # no way to tell which accounts exist


def test_throttling_is_audited_without_a_row_per_attempt(api: Api, clock: Clock) -> None:
    for i in range(200):
        _login(api, "mark", f"guess {i}")
    rows = [e for e in api.call("admin", "GET", "/api/audit", params={"action": "auth.login"}).json()]
    assert len(rows) <= 3, rows
    throttled = [e for e in rows if e["outcome"] == "throttled"]
    assert throttled and throttled[0]["count"] == 195 and throttled[0]["object"] == "mark"
    failed = [e for e in rows if e["outcome"] == "unauthenticated"]
    assert failed and failed[0]["user"] == "mark" and failed[0]["count"] == 5
    assert all("client testclient" in e["detail"] for e in rows)


def test_the_throttle_is_a_setting(api: Api) -> None:
    api.service.ws.config["service"] = {"login_free_failures": 2, "login_max_delay_seconds": 60}
    client = TestClient(create_app(service=api.service))  # no lifespan: the fixture's app closes the service
    api.service.users.clock = Clock()
    assert [_login(api, "mark", "wrong wrong", client) for _ in range(3)] == [401, 401, 429]
    api.service.ws.config["service"] = {"login_max_delay_seconds": 0}
    with pytest.raises(RejectedInput, match=r"service\.login_max_delay_seconds: must be a whole number from 1 to 86,400"):
        create_app(service=api.service)


def test_parallel_guesses_are_counted_too(api: Api, clock: Clock) -> None:
    """Each attempt counts before its password is checked, so 40 guesses at once cannot all be checked."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = Counter(pool.map(lambda i: _login(api, "mark", f"parallel guess {i}"), range(40)))
    assert codes[401] == 5 and codes[429] == 35, codes
