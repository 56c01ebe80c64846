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
import math
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from segmenta import clock
from segmenta.errors import Conflict, NotFound, PermissionDenied, Problem, RejectedInput, SegmentaError, Unauthenticated
from segmenta.model.schema import hint
from segmenta.store.auth_models import ROLES, ApiToken, LoginThrottle, User, WebSession
from segmenta.store.database import Store

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_HOURS = 12
MIN_PASSWORD = 8
TOKEN_PREFIX = "sgt_"
MAX_NAME = 200  # the store's column width: longer names cannot exist
MAX_PASSWORD = 1024
MAX_TOKEN_DAYS = 3650
USERNAME_PATTERN = r"^[A-Za-z0-9._@-]{1,100}$"
_USERNAME = re.compile(USERNAME_PATTERN)
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


class TooManyAttempts(SegmentaError):
    """Sign-in refused for a while after repeated failures (the service answers 429 with Retry-After)."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"too many failed sign-ins from this account or address; try again in {retry_after} s "
            "(the wait doubles with every further failure)"
        )


@dataclass(frozen=True)
class Throttle:
    """Login throttling: after ``free_failures`` failures of one account (4x that from one address),
    every attempt is refused for 1 s, then 2 s, 4 s, ... up to ``max_delay_seconds``."""

    free_failures: int = 5
    max_delay_seconds: int = 900
    address_factor: int = 4

    def delay(self, failures: int, free: int) -> int:
        if failures < free:
            return 0
        return int(min(2 ** min(failures - free, 40), self.max_delay_seconds))


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


def _plain(text: Any, limit: int) -> bool:
    """Text a store can hold and compare: a string of at most ``limit`` characters without NUL."""
    return isinstance(text, str) and len(text) <= limit and "\x00" not in text


def _info(user: User) -> UserInfo:
    return UserInfo(user.id, user.username, user.role, bool(user.pii_restricted))


class Users:
    """User administration and sign-in, on the metadata store."""

    def __init__(self, store: Store, *, throttle: Throttle | None = None) -> None:
        self.store = store
        self.throttle = throttle or Throttle()
        #: The wall clock of sessions, token expiry and throttling (tests move it).
        self.clock: Callable[[], dt.datetime] = _wall
        self._throttle_lock = threading.Lock()

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
            counts = {
                uid: n
                for uid, n in s.execute(
                    select(ApiToken.user_id, func.count()).where(self._usable(self.clock())).group_by(ApiToken.user_id)
                )
            }
            return [self._json(u, counts.get(u.id, 0)) for u in users]

    def get_user(self, username: str) -> dict[str, Any]:
        with self.store.session() as s:
            user = self._get(s, username)
            tokens = (
                s.scalar(
                    select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id, self._usable(self.clock()))
                )
                or 0
            )
            return self._json(user, int(tokens))

    def create_user(
        self,
        username: str,
        *,
        password: str | None,
        role: str,
        pii_restricted: bool = False,
        actor: UserInfo | None = None,
    ) -> dict[str, Any]:
        """A new user; ``password`` None: tokens only. A PII-restricted ``actor`` may create restricted users only."""
        problems = self._check(username=username, role=role, password=password)
        if not isinstance(pii_restricted, bool):
            problems.append(Problem("/pii_restricted", "must be true or false"))
        if problems:
            raise RejectedInput(problems)
        if actor is not None and actor.pii_restricted and not pii_restricted:
            raise PermissionDenied(
                "you are restricted from PII, so the users you create must be too (pii_restricted: true); "
                "an admin who is not restricted can create unrestricted users"
            )
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

    def update_user(self, username: str, changes: dict[str, Any], *, actor: UserInfo | None = None) -> dict[str, Any]:
        """Change ``role``, ``password``, ``pii_restricted`` or ``disabled``; the last admin stays an enabled admin.

        A new password ends the user's browser sessions and revokes their API tokens, unless
        ``keep_tokens: true`` comes with it. A PII-restricted ``actor`` (an admin restricted
        from PII) may not lift a restriction, nor set the password of an unrestricted user:
        either would give them the PII they may not see.
        """
        allowed = {"role", "password", "pii_restricted", "disabled", "keep_tokens"}
        problems = [
            Problem(f"/{k}", f"cannot be changed; one of: {', '.join(sorted(allowed))}") for k in changes if k not in allowed
        ]
        problems += self._check(role=changes.get("role"), password=changes.get("password"))
        for flag in ("pii_restricted", "disabled", "keep_tokens"):
            if flag in changes and not isinstance(changes[flag], bool):
                problems.append(Problem(f"/{flag}", "must be true or false"))
        if "keep_tokens" in changes and "password" not in changes:
            problems.append(Problem("/keep_tokens", "only goes with a new password"))
        if problems:
            raise RejectedInput(problems)
        with self.store.session() as s:
            user = self._get(s, username)
            if actor is not None and actor.pii_restricted:
                if user.pii_restricted and changes.get("pii_restricted") is False:
                    whose = "your own" if user.id == actor.id else "a"
                    raise PermissionDenied(
                        f"you are restricted from PII and cannot lift {whose} PII restriction; "
                        "another admin who is not restricted must do it"
                    )
                if changes.get("password") and not user.pii_restricted:
                    raise PermissionDenied(
                        f"you are restricted from PII and cannot set the password of {username!r}, who is not; "
                        "an admin who is not restricted must do it"
                    )
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
            if "password" in changes and not changes.get("keep_tokens", False):
                now = self.clock()
                for tok in s.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
                    tok.revoked_at = now
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

    # -- API tokens ---------------------------------------------------------------------

    def create_token(
        self,
        username: str,
        *,
        label: str = "",
        expires_in_days: int | None = None,
        expires_at: dt.datetime | None = None,
        actor: UserInfo | None = None,
    ) -> str:
        """A new API token for ``username``; the raw token is returned once and only its digest kept.

        ``expires_in_days`` (1..3650) or ``expires_at`` (a future instant, naive UTC): after it
        the token is refused; neither: it lasts until revoked.
        """
        now = self.clock()
        expiry = self._expiry(now, expires_in_days, expires_at)
        if not isinstance(label, str) or len(label) > 200 or "\x00" in label:
            raise RejectedInput([Problem("/label", "must be text of at most 200 characters, without NUL")])
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.session() as s:
            user = self._get(s, username)
            if actor is not None and actor.pii_restricted and not user.pii_restricted:
                raise PermissionDenied(
                    f"you are restricted from PII and cannot create a token for {username!r}, who is not; "
                    "an admin who is not restricted must do it"
                )
            s.add(
                ApiToken(
                    user_id=user.id,
                    token_hash=digest(token),
                    prefix=token[:10],
                    label=label,
                    created_at=clock.now(),
                    expires_at=expiry,
                )
            )
        return token

    def list_tokens(self, username: str) -> list[dict[str, Any]]:
        """The user's tokens, newest first, without their secrets: id, prefix, label, dates, state."""
        now = self.clock()
        with self.store.session() as s:
            user = self._get(s, username)
            tokens = s.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())).all()
            return [self._token_json(t, now) for t in tokens]

    def revoke_token(self, username: str, token_id: int) -> dict[str, Any]:
        """Revoke one token of ``username`` (by the id of :meth:`list_tokens`); it is refused from now on."""
        now = self.clock()
        with self.store.session() as s:
            user = self._get(s, username)
            tok = s.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))
            if tok is None:
                ids = [str(i) for i in s.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id))]
                raise NotFound(
                    [Problem(f"token {token_id}", f"{username!r} has no token with this id; theirs: {', '.join(ids) or 'none'}")]
                )
            if tok.revoked_at is None:
                tok.revoked_at = now
            return self._token_json(tok, now)

    @staticmethod
    def _expiry(now: dt.datetime, days: int | None, at: dt.datetime | None) -> dt.datetime | None:
        if days is not None and at is not None:
            raise RejectedInput([Problem("/expires_at", "give expires_in_days or expires_at, not both")])
        if days is not None:
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
                raise RejectedInput(
                    [Problem("/expires_in_days", f"must be a whole number of days from 1 to {MAX_TOKEN_DAYS}, not {days!r}")]
                )
            return now + dt.timedelta(days=days)
        if at is not None:
            if at.tzinfo is not None:
                at = at.astimezone(dt.UTC).replace(tzinfo=None)
            if at <= now:
                raise RejectedInput([Problem("/expires_at", f"must be in the future (now is {now.isoformat()}Z)")])
            if at > now + dt.timedelta(days=MAX_TOKEN_DAYS):
                raise RejectedInput([Problem("/expires_at", f"must be at most {MAX_TOKEN_DAYS} days ahead")])
            return at
        return None

    @staticmethod
    def _usable(now: dt.datetime) -> Any:
        return (ApiToken.revoked_at.is_(None)) & (ApiToken.expires_at.is_(None) | (ApiToken.expires_at > now))

    @staticmethod
    def _token_json(tok: ApiToken, now: dt.datetime) -> dict[str, Any]:
        state = "revoked" if tok.revoked_at is not None else "expired" if tok.expires_at and tok.expires_at <= now else "active"
        return {
            "id": tok.id,
            "prefix": tok.prefix,
            "label": tok.label,
            "created_at": tok.created_at.isoformat(),
            "last_used_at": tok.last_used_at.isoformat() if tok.last_used_at else None,
            "expires_at": tok.expires_at.isoformat() if tok.expires_at else None,
            "revoked_at": tok.revoked_at.isoformat() if tok.revoked_at else None,
            "state": state,
        }

    # -- signing in -------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> UserInfo:
        """The user whose password this is; one message for every failure (no user enumeration)."""
        global _DUMMY_HASH
        if not _plain(username, MAX_NAME) or not _plain(password, MAX_PASSWORD):
            raise Unauthenticated("wrong username or password")
        with self.store.session() as s:
            user = s.scalar(select(User).where(User.username == username))
            stored = user.password_hash if user is not None else None
            if stored is None:
                _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(8))
                verify_password(password, _DUMMY_HASH)
            if user is None or user.disabled or not verify_password(password, stored):
                raise Unauthenticated("wrong username or password")
            return _info(user)

    def login(self, username: str, password: str, *, address: str) -> UserInfo:
        """:meth:`authenticate`, throttled per account and per client ``address``.

        Every attempt counts as a failure before the password is checked (so parallel guesses
        count too) and is forgiven when it succeeds. While a key is locked every attempt is
        refused with :class:`TooManyAttempts`, the right password too.
        """
        keys = [f"user:{username[:MAX_NAME]}", f"addr:{address[:200]}"]
        frees = [self.throttle.free_failures, self.throttle.free_failures * self.throttle.address_factor]
        now = self.clock()
        stale = now - dt.timedelta(seconds=2 * self.throttle.max_delay_seconds)
        with self._throttle_lock, self.store.session() as s:
            rows = {r.key: r for r in s.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))}
            waits = [r.locked_until for r in rows.values() if r.locked_until is not None and r.locked_until > now]
            if waits:
                raise TooManyAttempts(max(1, math.ceil((max(waits) - now).total_seconds())))
            s.execute(
                delete(LoginThrottle).where(
                    LoginThrottle.last_failure_at < stale,
                    LoginThrottle.key.not_in(keys),
                    LoginThrottle.locked_until.is_(None) | (LoginThrottle.locked_until < now),
                )
            )
            for key, free in zip(keys, frees, strict=True):
                row = rows.get(key)
                if row is None:
                    row = LoginThrottle(key=key, failures=0, last_failure_at=now)
                    s.add(row)
                elif row.last_failure_at < stale:
                    row.failures = 0
                row.failures += 1
                row.last_failure_at = now
                wait = self.throttle.delay(row.failures, free)
                row.locked_until = now + dt.timedelta(seconds=wait) if wait else None
        user = self.authenticate(username, password)
        with self._throttle_lock, self.store.session() as s:
            for row in s.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))):
                if row.key == keys[0]:
                    s.delete(row)  # the account's counter starts again
                else:
                    row.failures = max(0, row.failures - 1)  # this attempt was no failure
                    if self.throttle.delay(row.failures, frees[1]) == 0:
                        row.locked_until = None
        return user

    def start_session(self, user: UserInfo) -> str:
        """A new browser session id for ``user`` (the raw id goes in the cookie only)."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
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
                .where(WebSession.session_hash == digest(sid), WebSession.expires_at > self.clock(), User.disabled.is_(False))
            ).scalar_one_or_none()
            return _info(row) if row is not None else None

    def by_token(self, token: str) -> UserInfo | None:
        """The token's user, unless the token is unknown, revoked or expired, or the user disabled."""
        now = self.clock()
        with self.store.session() as s:
            tok = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token), self._usable(now)))
            if tok is None:
                return None
            user = s.get(User, tok.user_id)
            if user is None or user.disabled:
                return None
            if tok.last_used_at is None or now - tok.last_used_at > dt.timedelta(minutes=1):
                tok.last_used_at = now
            return _info(user)

    # -- helpers ------------------------------------------------------------------------

    def _get(self, s: Session, username: str) -> User:
        if not _plain(username, MAX_NAME):
            raise NotFound([Problem(username[:80], f"no user has this name (names have at most {MAX_NAME} characters, no NUL)")])
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
    def _check(*, username: Any = None, role: Any = None, password: Any = None) -> list[Problem]:
        problems = []
        if username is not None and (not isinstance(username, str) or not _USERNAME.match(username)):
            problems.append(Problem("/username", "use 1-100 letters, digits or . _ @ -"))
        if role is not None and (not isinstance(role, str) or role not in ROLES):
            shown = hint(role, ROLES) if isinstance(role, str) else ""
            problems.append(Problem("/role", f"must be one of {', '.join(ROLES)}, not {role!r}{shown}"))
        if password is not None:
            if not isinstance(password, str):
                problems.append(Problem("/password", f"must be text, not {type(password).__name__}"))
            elif not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
                problems.append(Problem("/password", f"must have {MIN_PASSWORD} to {MAX_PASSWORD} characters"))
            elif "\x00" in password:
                problems.append(Problem("/password", "must not contain NUL characters"))
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
