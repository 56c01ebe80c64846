"""Store tables of the service: users, their API tokens, browser sessions, and the audit log.

Secrets are never stored: passwords as salted scrypt hashes, tokens and session ids
(high-entropy random strings) as SHA-256 hex digests (revision 0003);
token expiry and revocation, login throttling and aggregated audit rows came with revision 0004.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segmenta.store.models import Base

ROLES = ("admin", "operator", "marketer", "viewer")


class User(Base):
    """A person (or system) who signs in to the service."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    pii_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``scrypt$n$r$p$salt_hex$hash_hex``; None: the user signs in with tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(400), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ApiToken(Base):
    """A bearer token of a user; only its SHA-256 digest is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, to tell tokens apart in listings (not enough to use it).
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: None: never expires (revision 0004).
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: When the token was revoked; a revoked token is refused and kept only for the listing.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class WebSession(Base):
    """A browser session (the HttpOnly cookie holds the id; the store its SHA-256 digest)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AuditLog(Base):
    """One mutating call of the service: who, what, on which object, when, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    action: Mapped[str] = mapped_column(String(60))
    object: Mapped[str] = mapped_column(String(400), default="")
    outcome: Mapped[str] = mapped_column(String(40))  # ok | denied | rejected | conflict | not_found | error | failed_login
    detail: Mapped[str] = mapped_column(Text, default="")
    #: How many calls this row stands for (anonymous refusals are aggregated per client address and minute).
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class LoginThrottle(Base):
    """Failed sign-ins of one account (``user:NAME``) or one client address (``addr:IP``), revision 0004."""

    __tablename__ = "login_throttle"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    #: Until when every attempt on this key is refused (429), the right password too.
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
