"""API tokens: optional expiry, a listing without secrets, revocation (API and CLI); a password change
ends sessions and revokes tokens unless the admin explicitly keeps them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from segmenta.services.users import digest
from tests.api.conftest import PASSWORD, Api
from tests.api.test_auth_throttle import Clock


@pytest.fixture
def clock(api: Api) -> Clock:
    fake = Clock()
    api.service.users.clock = fake
    return fake


def _me(api: Api, token: str) -> int:
    return api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_token_with_an_expiry_is_refused_after_it(api: Api, clock: Clock) -> None:
    made = api.call("admin", "POST", "/api/users/spare/tokens", json={"label": "ci", "expires_in_days": 2})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["expires_at"] == "2026-12-03T12:00:00"
    assert _me(api, token) == 200
    clock.advance(2 * 86400 - 1)
    assert _me(api, token) == 200
    clock.advance(1)
    refused = api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "Unauthenticated"
    listed = api.call("admin", "GET", "/api/users/spare/tokens").json()
    assert [t["state"] for t in listed] == ["expired"]


def test_expires_at_is_an_instant_in_the_future(api: Api, clock: Clock) -> None:
    made = api.call("admin", "POST", "/api/users/spare/tokens", json={"expires_at": "2026-12-01T13:00:00+01:00"})
    assert made.status_code == 422, made.text  # 12:00 UTC: not in the future
    assert made.json()["error"]["problems"][0]["where"] == "/expires_at"
    made = api.call("admin", "POST", "/api/users/spare/tokens", json={"expires_at": "2026-12-01T14:00:00+01:00"})
    assert made.status_code == 201 and made.json()["expires_at"] == "2026-12-01T13:00:00"
    for bad in ({"expires_in_days": 0}, {"expires_in_days": 4000}, {"expires_in_days": 1, "expires_at": "2027-01-01"}):
        refused = api.call("admin", "POST", "/api/users/spare/tokens", json=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert "expires" in refused.json()["error"]["message"]


def test_tokens_are_listed_without_their_secret_and_revoked(api: Api) -> None:
    token = api.call("admin", "POST", "/api/users/spare/tokens", json={"label": "ci"}).json()["token"]
    other = api.call("admin", "POST", "/api/users/spare/tokens", json={"label": "nightly"}).json()["token"]
    listing = api.call("admin", "GET", "/api/users/spare/tokens")
    assert listing.status_code == 200
    assert token not in listing.text and other not in listing.text and digest(token) not in listing.text
    rows = listing.json()
    assert [r["label"] for r in rows] == ["nightly", "ci"] and all(r["state"] == "active" for r in rows)
    assert token.startswith(rows[1]["prefix"]) and len(rows[1]["prefix"]) <= 10
    revoked = api.call("admin", "DELETE", f"/api/users/spare/tokens/{rows[1]['id']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert _me(api, token) == 401
    assert _me(api, other) == 200
    assert api.call("admin", "GET", "/api/users/spare").json()["tokens"] == 1  # usable tokens
    missing = api.call("admin", "DELETE", "/api/users/spare/tokens/9999")
    assert missing.status_code == 404 and "no token with this id" in missing.json()["error"]["message"]
    # Another user's token id is not reachable through this user.
    assert api.call("admin", "DELETE", f"/api/users/vera/tokens/{rows[0]['id']}").status_code == 404
    audit = [
        e for e in api.call("admin", "GET", "/api/audit", params={"action": "users.revoke_token"}).json() if e["outcome"] == "ok"
    ]
    assert len(audit) == 1 and audit[0]["object"] == f"spare/{rows[1]['id']}" and audit[0]["user"] == "admin"


def test_a_password_change_ends_sessions_and_revokes_tokens(api: Api) -> None:
    token = api.tokens["viewer"]
    assert api.client.post("/api/auth/login", json={"username": "vera", "password": PASSWORD}).status_code == 200
    changed = api.call("admin", "PATCH", "/api/users/vera", json={"password": "a brand new passphrase"})
    assert changed.status_code == 200, changed.text
    assert api.client.get("/api/auth/me").status_code == 401  # the session ended
    assert _me(api, token) == 401  # the token was revoked
    assert [t["state"] for t in api.call("admin", "GET", "/api/users/vera/tokens").json()] == ["revoked"]


def test_tokens_survive_a_password_change_only_when_asked(api: Api) -> None:
    token = api.tokens["viewer"]
    kept = api.call("admin", "PATCH", "/api/users/vera", json={"password": "a brand new passphrase", "keep_tokens": True})
    assert kept.status_code == 200, kept.text
    assert _me(api, token) == 200
    alone = api.call("admin", "PATCH", "/api/users/vera", json={"keep_tokens": True})
    assert alone.status_code == 422 and "only goes with a new password" in alone.text


def _cli(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEGMENTA_WORKSPACE": str(api.service.ws.path)}
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True, env=env, timeout=120)


def test_tokens_from_the_command_line(api: Api) -> None:
    made = _cli(api, "users", "tokens", "create", "spare", "--label", "backup", "--expires-in-days", "30")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("sgt_") and _me(api, token) == 200
    listed = _cli(api, "users", "tokens", "list", "spare")
    assert listed.returncode == 0 and token not in listed.stdout
    line = listed.stdout.splitlines()[0]
    token_id = line.split("\t")[0]
    assert "\tactive\tbackup\t" in line and "expires 20" in line
    revoked = _cli(api, "users", "tokens", "revoke", "spare", token_id)
    assert revoked.returncode == 0 and f"revoked token {token_id}" in revoked.stdout
    assert _me(api, token) == 401
    assert "\trevoked\t" in _cli(api, "users", "tokens", "list", "spare").stdout
    bad = _cli(api, "users", "tokens", "create", "spare", "--expires-in-days", "0")
    assert bad.returncode == 2 and "expires_in_days" in bad.stderr and "1 to 3650" in bad.stderr
    missing = _cli(api, "users", "tokens", "revoke", "spare", "9999")
    assert missing.returncode == 2 and "no token with this id" in missing.stderr


def test_expiry_uses_the_real_clock_by_default(api: Api) -> None:
    made = api.call("admin", "POST", "/api/users/spare/tokens", json={"expires_in_days": 1}).json()
    expires = dt.datetime.fromisoformat(made["expires_at"])
    assert abs((expires - dt.datetime.now(dt.UTC).replace(tzinfo=None)) - dt.timedelta(days=1)) < dt.timedelta(minutes=5)
