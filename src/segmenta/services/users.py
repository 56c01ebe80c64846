"""Users, roles, passwords, API tokens and browser sessions of the service.

Only hashes are stored: passwords as salted scrypt (per-user random salt), API tokens
and session ids (256-bit random strings) as SHA-256 digests. A raw secret exists only
in the answer that creates it.

Example::

    users = Users(store)
    first = users.ensure_admin()          # None once any user exists
    token = users.create_token("admin")   # shown once
    me = users.by_token(token)            # -> UserInfo(username="admin", role="admin", ...)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from segmenta import clock
from segmenta.errors import Conflict, NotFound, Problem, RejectedInput, Unauthenticated
from segmenta.model.schema import hint
from segmenta.store.auth_models import ROLES, ApiToken, User, WebSession
from segmenta.store.database import Store

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_HOURS = 12
MIN_PASSWORD = 8
TOKEN_PREFIX = "sgt_"
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")
_DUMMY_HASH = ""  # filled lazily: verifying an unknown user costs as much as a known one


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` hashes to ``stored`` (compared in constant time)."""
    try:
        scheme, n, r, p, salt, want = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(want) // 2
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), want)


def digest(secret: str) -> str:
    """SHA-256 hex digest of a high-entropy secret (token or session id)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class UserInfo:
    """Who is calling: never carries a secret."""

    id: int
    username: str
    role: str
    pii_restricted: bool

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["id"]
        return data


@dataclass(frozen=True)
class FirstAdmin:
    """The admin created on first start, with its secrets (printed once, never stored)."""

    username: str
    password: str
    token: str


def _info(user: User) -> UserInfo:
    return UserInfo(user.id, user.username, user.role, bool(user.pii_restricted))


class Users:
    """User administration and sign-in, on the metadata store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- first start --------------------------------------------------------------

    def ensure_admin(self) -> FirstAdmin | None:
        """When the store has no user: create ``admin`` with a generated password and token."""
        with self.store.session() as s:
            if s.scalar(select(func.count()).select_from(User)):
                return None
        password = secrets.token_urlsafe(12)
        self.create_user("admin", password=password, role="admin")
        return FirstAdmin("admin", password, self.create_token("admin", label="first start"))

    # -- administration -----------------------------------------------------------

    def list_users(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            users = s.scalars(select(User).order_by(User.username)).all()
            counts = {uid: n for uid, n in s.execute(select(ApiToken.user_id, func.count()).group_by(ApiToken.user_id))}
            return [self._json(u, counts.get(u.id, 0)) for u in users]

    def get_user(self, username: str) -> dict[str, Any]:
        with self.store.session() as s:
            user = self._get(s, username)
            tokens = s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id)) or 0
            return self._json(user, int(tokens))

    def create_user(self, username: str, *, password: str | None, role: str, pii_restricted: bool = False) -> dict[str, Any]:
        """A new user; ``password`` None: tokens only."""
        problems = self._check(username=username, role=role, password=password)
        if problems:
            raise RejectedInput(problems)
        now = clock.now()
        with self.store.session() as s:
            if s.scalar(select(User).where(User.username == username)) is not None:
                raise Conflict([Problem("/username", f"a user named {username!r} already exists")])
            s.add(
                User(
                    username=username,
                    role=role,
                    pii_restricted=pii_restricted,
                    disabled=False,
                    password_hash=hash_password(password) if password else None,
                    created_at=now,
                    updated_at=now,
                )
            )
        return self.get_user(username)

    def update_user(self, username: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change ``role``, ``password``, ``pii_restricted`` or ``disabled``; the last admin stays an enabled admin."""
        allowed = {"role", "password", "pii_restricted", "disabled"}
        problems = [
            Problem(f"/{k}", f"cannot be changed; one of: {', '.join(sorted(allowed))}") for k in changes if k not in allowed
        ]
        problems += self._check(role=changes.get("role"), password=changes.get("password"))
        for flag in ("pii_restricted", "disabled"):
            if flag in changes and not isinstance(changes[flag], bool):
                problems.append(Problem(f"/{flag}", "must be true or false"))
        if problems:
            raise RejectedInput(problems)
        with self.store.session() as s:
            user = self._get(s, username)
            demoted = changes.get("role", user.role) != "admin" or changes.get("disabled", False)
            if user.role == "admin" and demoted:
                self._keep_an_admin(s, user)
            for key in ("role", "pii_restricted", "disabled"):
                if key in changes:
                    setattr(user, key, changes[key])
            if changes.get("password"):
                user.password_hash = hash_password(changes["password"])
            if changes.get("disabled") or "password" in changes:
                s.execute(delete(WebSession).where(WebSession.user_id == user.id))
            user.updated_at = clock.now()
        return self.get_user(username)

    def delete_user(self, username: str) -> None:
        """Remove a user with their tokens and sessions; the last admin cannot be removed."""
        with self.store.session() as s:
            user = self._get(s, username)
            if user.role == "admin":
                self._keep_an_admin(s, user)
            s.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
            s.execute(delete(WebSession).where(WebSession.user_id == user.id))
            s.delete(user)

    def create_token(self, username: str, *, label: str = "") -> str:
        """A new API token for ``username``; the raw token is returned once and only its digest kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.session() as s:
            user = self._get(s, username)
            s.add(
                ApiToken(user_id=user.id, token_hash=digest(token), prefix=token[:10], label=label[:200], created_at=clock.now())
            )
        return token

    # -- signing in -------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> UserInfo:
        """The user whose password this is; one message for every failure (no user enumeration)."""
        global _DUMMY_HASH
        with self.store.session() as s:
            user = s.scalar(select(User).where(User.username == username))
            stored = user.password_hash if user is not None else None
            if stored is None:
                _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(8))
                verify_password(password, _DUMMY_HASH)
            if user is None or user.disabled or not verify_password(password, stored):
                raise Unauthenticated("wrong username or password")
            return _info(user)

    def start_session(self, user: UserInfo) -> str:
        """A new browser session id for ``user`` (the raw id goes in the cookie only)."""
        sid = secrets.token_urlsafe(32)
        now = _wall()
        with self.store.session() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at < now))
            s.add(
                WebSession(
                    user_id=user.id, session_hash=digest(sid), created_at=now, expires_at=now + dt.timedelta(hours=SESSION_HOURS)
                )
            )
        return sid

    def end_session(self, sid: str) -> None:
        with self.store.session() as s:
            s.execute(delete(WebSession).where(WebSession.session_hash == digest(sid)))

    def by_session(self, sid: str) -> UserInfo | None:
        with self.store.session() as s:
            row = s.execute(
                select(User)
                .join(WebSession, WebSession.user_id == User.id)
                .where(WebSession.session_hash == digest(sid), WebSession.expires_at > _wall(), User.disabled.is_(False))
            ).scalar_one_or_none()
            return _info(row) if row is not None else None

    def by_token(self, token: str) -> UserInfo | None:
        with self.store.session() as s:
            tok = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
            if tok is None:
                return None
            user = s.get(User, tok.user_id)
            if user is None or user.disabled:
                return None
            now = _wall()
            if tok.last_used_at is None or now - tok.last_used_at > dt.timedelta(minutes=1):
                tok.last_used_at = now
            return _info(user)

    # -- helpers ------------------------------------------------------------------------

    def _get(self, s: Session, username: str) -> User:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            names = s.scalars(select(User.username)).all()
            raise NotFound([Problem(username, f"no user has this name{hint(username, names)}")])
        return user

    def _keep_an_admin(self, s: Session, user: User) -> None:
        others = s.scalar(
            select(func.count()).select_from(User).where(User.role == "admin", User.id != user.id, User.disabled.is_(False))
        )
        if not others:
            raise Conflict([Problem(user.username, "is the last enabled admin; make another user admin first")])

    @staticmethod
    def _check(*, username: str | None = None, role: str | None = None, password: str | None = None) -> list[Problem]:
        problems = []
        if username is not None and not _USERNAME.match(username):
            problems.append(Problem("/username", "use 1-100 letters, digits or . _ @ -"))
        if role is not None and role not in ROLES:
            problems.append(Problem("/role", f"must be one of {', '.join(ROLES)}, not {role!r}{hint(role, ROLES)}"))
        if password is not None and len(password) < MIN_PASSWORD:
            problems.append(Problem("/password", f"must have at least {MIN_PASSWORD} characters"))
        return problems

    @staticmethod
    def _json(user: User, tokens: int) -> dict[str, Any]:
        return {
            "username": user.username,
            "role": user.role,
            "pii_restricted": bool(user.pii_restricted),
            "disabled": bool(user.disabled),
            "has_password": user.password_hash is not None,
            "tokens": tokens,
            "created_at": user.created_at.isoformat(),
        }
