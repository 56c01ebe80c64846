"""Cross-site request forgery: a state-changing call signed in by the session cookie must come from the service's own origin."""

from __future__ import annotations

import pytest

from tests.api.conftest import PASSWORD, Api

EVIL = "http://127.0.0.1:9999"


def _sign_in(api: Api, username: str = "olga") -> None:
    assert api.client.post("/api/auth/login", json={"username": username, "password": PASSWORD}).status_code == 200


def _status(api: Api) -> str:
    return str(api.call("admin", "GET", "/api/segments/Gold").json()["status"])


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-site", "Origin": EVIL},  # another port on the same host: same-site, not same-origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": EVIL},  # an older browser without Sec-Fetch-*
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "https://testserver"},  # another scheme is another origin
    ],
)
def test_a_cross_origin_cookie_request_changes_nothing(api: Api, headers: dict[str, str]) -> None:
    _sign_in(api)
    refused = api.client.post("/api/segments/Gold/stop", headers=headers)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["type"] == "PermissionDenied" and "cross-origin request refused" in error["message"]
    assert _status(api) == "live"
    assert api.client.delete("/api/segments/Draft", headers=headers).status_code == 403
    assert api.client.post("/api/auth/logout", headers=headers).status_code == 403
    assert api.client.get("/api/auth/me").json()["username"] == "olga"  # still signed in: logout was refused too


def test_a_cross_origin_login_is_refused(api: Api) -> None:
    refused = api.client.post(
        "/api/auth/login", json={"username": "olga", "password": PASSWORD}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403 and "set-cookie" not in refused.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        {"Origin": "http://testserver:80"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar / a bookmark
        {},  # not a browser (curl, scripts)
    ],
)
def test_the_service_s_own_pages_still_work(api: Api, headers: dict[str, str]) -> None:
    _sign_in(api)
    done = api.client.post("/api/segments/Gold/stop", headers=headers)
    assert done.status_code == 200, done.text
    assert _status(api) == "stopped"


def test_bearer_token_requests_are_not_affected(api: Api) -> None:
    done = api.call("operator", "POST", "/api/segments/Gold/stop", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert done.status_code == 200, done.text


def test_reads_are_not_affected(api: Api) -> None:
    _sign_in(api)
    assert api.client.get("/api/segments/Gold", headers={"Sec-Fetch-Site": "cross-site", "Origin": EVIL}).status_code == 200
