"""An admin restricted from PII cannot lift the restriction (their own or anyone's) nor take over an unrestricted account."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api


@pytest.fixture
def ria(api: Api) -> Api:
    made = api.call("admin", "POST", "/api/users", json={"username": "ria", "role": "admin", "pii_restricted": True})
    assert made.status_code == 201, made.text
    api.tokens["ria"] = api.call("admin", "POST", "/api/users/ria/tokens").json()["token"]
    return api


def test_a_restricted_admin_cannot_lift_their_own_restriction(ria: Api) -> None:
    refused = ria.call("ria", "PATCH", "/api/users/ria", json={"pii_restricted": False})
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert "cannot lift your own PII restriction" in message and "another admin" in message
    assert ria.call("admin", "GET", "/api/users/ria").json()["pii_restricted"] is True
    assert ria.call("ria", "GET", "/api/auth/me").json()["pii_restricted"] is True


def test_nor_anyone_else_s(ria: Api) -> None:
    refused = ria.call("ria", "PATCH", "/api/users/rita", json={"pii_restricted": False})
    assert refused.status_code == 403 and "cannot lift a PII restriction" in refused.json()["error"]["message"]
    assert ria.call("admin", "GET", "/api/users/rita").json()["pii_restricted"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "words"),
    [
        ("POST", "/api/users", {"username": "sock", "password": "long enough", "role": "admin"}, "must be too"),
        ("PATCH", "/api/users/mark", {"password": "a password ria knows"}, "cannot set the password of 'mark'"),
        ("POST", "/api/users/mark/tokens", {"label": "mine now"}, "cannot create a token for 'mark'"),
    ],
)
def test_nor_take_over_an_unrestricted_account(ria: Api, method: str, path: str, body: dict, words: str) -> None:
    refused = ria.call("ria", method, path, json=body)
    assert refused.status_code == 403, refused.text
    assert words in refused.json()["error"]["message"]
    assert "sock" not in [u["username"] for u in ria.call("admin", "GET", "/api/users").json()]


def test_the_restricted_admin_still_administers_and_another_admin_can_lift_it(ria: Api) -> None:
    made = ria.call("ria", "POST", "/api/users", json={"username": "temp", "role": "viewer", "pii_restricted": True})
    assert made.status_code == 201
    assert ria.call("ria", "PATCH", "/api/users/vera", json={"role": "marketer"}).status_code == 200
    assert ria.call("ria", "PATCH", "/api/users/rita", json={"password": "a new rita password"}).status_code == 200
    lifted = ria.call("admin", "PATCH", "/api/users/ria", json={"pii_restricted": False})
    assert lifted.status_code == 200 and lifted.json()["pii_restricted"] is False
    assert ria.call("ria", "GET", "/api/auth/me").json()["pii_restricted"] is False
