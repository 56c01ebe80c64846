"""Sign-in, sessions, secrets at rest and in logs, user administration, and the audit log."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from segmenta.services.users import digest
from tests.api.conftest import PASSWORD, UK, Api


def _store_bytes(api: Api) -> bytes:
    path = Path(api.service.ws.path)
    return b"".join(p.read_bytes() for p in path.glob("store.sqlite*"))


def test_login_sets_an_httponly_session_cookie_and_logout_ends_it(api: Api) -> None:
    response = api.client.post("/api/auth/login", json={"username": "mark", "password": PASSWORD})
    assert response.status_code == 200 and response.json() == {
        "user": {"username": "mark", "role": "marketer", "pii_restricted": False}
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("segmenta_session=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    sid = api.client.cookies["segmenta_session"]
    assert api.client.get("/api/auth/me").json()["username"] == "mark"
    assert api.client.post("/api/auth/logout").status_code == 200
    assert api.client.get("/api/auth/me").status_code == 401
    api.client.cookies.set("segmenta_session", sid)  # the old session id is dead, not just forgotten
    assert api.client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize(("username", "password"), [("mark", "wrong password"), ("nobody", PASSWORD)])
def test_a_failed_login_says_the_same_whatever_was_wrong(api: Api, username: str, password: str) -> None:
    response = api.client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "wrong username or password"
    assert "set-cookie" not in response.headers


def test_tokens_and_passwords_are_stored_only_as_hashes(api: Api) -> None:
    token = api.call("admin", "POST", "/api/users/spare/tokens", json={"label": "ci"}).json()["token"]
    assert api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "spare"
    at_rest = _store_bytes(api)
    for raw in (token, *api.tokens.values(), api.first.password, PASSWORD):
        assert raw.encode() not in at_rest
    assert digest(token).encode() in at_rest
    hashes = re.findall(rb"scrypt\$16384\$8\$1\$([0-9a-f]{32})\$[0-9a-f]{64}", at_rest)
    assert len(set(hashes)) >= 5  # one fresh salt per user, though four share a password


def test_secrets_never_reach_logs_or_answers(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "a very secret passphrase"
    created = api.call("admin", "POST", "/api/users", json={"username": "sam", "password": secret, "role": "viewer"})
    token = api.call("admin", "POST", "/api/users/sam/tokens").json()["token"]
    api.client.post("/api/auth/login", json={"username": "sam", "password": secret})
    api.client.post("/api/auth/login", json={"username": "sam", "password": secret + "x"})
    api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    api.call("admin", "PATCH", "/api/users/sam", json={"password": secret + "2"})
    answers = [created.text] + [api.call("admin", "GET", p).text for p in ("/api/users", "/api/users/sam", "/api/audit")]
    sid = api.client.cookies.get("segmenta_session") or ""
    for text in [caplog.text, *answers]:
        for raw in (secret, secret + "x", secret + "2", token, sid, api.first.password):
            assert not raw or raw not in text
        assert "scrypt$" not in text and digest(token) not in text


def test_first_admin_is_created_once(api: Api) -> None:
    assert api.service.users.ensure_admin() is None
    names = [u["username"] for u in api.call("admin", "GET", "/api/users").json()]
    assert names.count("admin") == 1


def test_user_administration_rules(api: Api) -> None:
    dup = api.call("admin", "POST", "/api/users", json={"username": "mark", "password": "long enough", "role": "viewer"})
    assert dup.status_code == 409 and dup.json()["error"]["type"] == "Conflict"
    bad = api.call("admin", "POST", "/api/users", json={"username": "x", "password": "short", "role": "markter"})
    assert bad.status_code == 422
    assert [p["where"] for p in bad.json()["error"]["problems"]] == ["/role", "/password"]
    assert "did you mean 'marketer'" in bad.text
    assert api.call("admin", "DELETE", "/api/users/admin").status_code == 409
    assert api.call("admin", "PATCH", "/api/users/admin", json={"role": "viewer"}).status_code == 409
    assert api.call("admin", "PATCH", "/api/users/vera", json={"role": "admin"}).status_code == 200
    assert api.call("admin", "PATCH", "/api/users/admin", json={"role": "viewer"}).status_code == 200
    # vera (the "viewer" token) is an admin now
    missing = api.call("viewer", "GET", "/api/users/sparre")
    assert missing.status_code == 404 and "did you mean 'spare'" in missing.text
    assert api.call("viewer", "DELETE", "/api/users/spare").status_code == 200
    assert api.call("viewer", "GET", "/api/users/spare").status_code == 404


def test_audit_records_who_did_what_and_how_it_ended(api: Api) -> None:
    before = {e["id"] for e in api.call("admin", "GET", "/api/audit").json()}
    api.call("marketer", "POST", "/api/segments/Draft/publish")
    api.call("viewer", "POST", "/api/segments/Gold/stop")
    api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "Gold"})
    api.call("marketer", "POST", "/api/segments", json={"definition": {"audience": "contact", "groups": []}, "name": "Bad"})
    api.call("operator", "POST", "/api/segments/Nope/refresh")
    api.client.post("/api/segments/Gold/stop")
    api.call("viewer", "GET", "/api/model")
    api.call("viewer", "POST", "/api/definitions/estimate", json={"definition": UK})
    new = [e for e in api.call("operator", "GET", "/api/audit").json() if e["id"] not in before]
    got = [(e["user"], e["action"], e["object"], e["outcome"]) for e in reversed(new)]
    assert got == [
        ("mark", "segments.publish", "Draft", "ok"),
        ("vera", "segments.stop", "Gold", "denied"),
        ("mark", "segments.create_segment", "Gold", "conflict"),
        ("mark", "segments.create_segment", "Bad", "rejected"),
        ("olga", "segments.refresh", "Nope", "not_found"),
        (None, "segments.stop", "Gold", "unauthenticated"),
    ]
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", e["at"]) for e in new)


def test_audit_records_sign_ins_and_filters(api: Api) -> None:
    api.client.post("/api/auth/login", json={"username": "vera", "password": PASSWORD})
    api.client.post("/api/auth/login", json={"username": "vera", "password": "nope nope"})
    api.client.post("/api/auth/login", json={"username": "who-is-this", "password": "nope nope"})
    logins = api.call("admin", "GET", "/api/audit", params={"action": "auth.login", "limit": 3}).json()
    assert [(e["user"], e["outcome"]) for e in reversed(logins)] == [
        ("vera", "ok"),
        ("vera", "unauthenticated"),
        (None, "unauthenticated"),
    ]
    assert "who-is-this" not in str(logins) and "nope" not in str(logins)
    mine = api.call("admin", "GET", "/api/audit", params={"user": "vera"}).json()
    assert mine and all(e["user"] == "vera" for e in mine)
