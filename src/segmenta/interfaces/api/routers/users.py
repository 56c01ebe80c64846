"""User administration and API tokens (admin only), and the audit log (admin, operator).

An admin restricted from PII may not use these routes to reach PII: they cannot lift a PII
restriction (their own included), create unrestricted users, or set the password of or create
a token for an unrestricted user (403); another, unrestricted admin must.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.json_schema import JsonDict

from segmenta.interfaces.api.auth import SIGNED_IN, AuditRead, UsersAdmin, UsersRead, error_responses
from segmenta.services import audit
from segmenta.services.stores import ROLES
from segmenta.services.users import MAX_NAME, MAX_PASSWORD, MAX_TOKEN_DAYS, MIN_PASSWORD, USERNAME_PATTERN

router = APIRouter(prefix="/api", tags=["users"])

Username = Path(max_length=MAX_NAME, description="The user's name")
# What the service checks itself (with its own messages, "did you mean ..."), stated in the OpenAPI document.
USERNAME_SCHEMA: JsonDict = {"pattern": USERNAME_PATTERN}
ROLE_SCHEMA: JsonDict = {"enum": list(ROLES)}
PASSWORD_SCHEMA: JsonDict = {"minLength": MIN_PASSWORD, "pattern": "^[^\\x00]*$"}


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=MAX_NAME, json_schema_extra=USERNAME_SCHEMA)
    password: str | None = Field(default=None, max_length=MAX_PASSWORD, json_schema_extra=PASSWORD_SCHEMA)
    role: str = Field(max_length=20, json_schema_extra=ROLE_SCHEMA)
    pii_restricted: StrictBool = False


class UserChanges(BaseModel):
    """What an admin may change; a new ``password`` ends the user's sessions and revokes their tokens
    unless ``keep_tokens`` is true."""

    # Each may be left out, but not sent as null (the schema types them without null; the default is never validated).
    model_config = ConfigDict(extra="forbid")
    role: str = Field(default=None, max_length=20, json_schema_extra=ROLE_SCHEMA)  # type: ignore[assignment]
    password: str = Field(default=None, max_length=MAX_PASSWORD, json_schema_extra=PASSWORD_SCHEMA)  # type: ignore[assignment]
    pii_restricted: StrictBool = None  # type: ignore[assignment]
    disabled: StrictBool = None  # type: ignore[assignment]
    keep_tokens: StrictBool = None  # type: ignore[assignment]


class NewToken(BaseModel):
    """``expires_in_days`` or ``expires_at`` (ISO 8601, UTC when no offset); neither: valid until revoked."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(default="", max_length=200, json_schema_extra={"pattern": "^[^\\x00]*$"})
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_TOKEN_DAYS)
    expires_at: dt.datetime | None = None


class UserOut(BaseModel):
    username: str
    role: str
    pii_restricted: bool
    disabled: bool
    has_password: bool
    tokens: int
    created_at: str


class TokenOut(BaseModel):
    id: int
    prefix: str
    label: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None
    state: str


class CreatedToken(BaseModel):
    username: str
    token: str
    id: int
    expires_at: str | None


@router.get("/users", responses=error_responses(*SIGNED_IN), response_model=list[UserOut])
def list_users(ctx: UsersRead) -> list[dict[str, Any]]:
    return ctx.service.users.list_users()


@router.get("/users/{username}", responses=error_responses(*SIGNED_IN, 404), response_model=UserOut)
def get_user(ctx: UsersRead, username: str = Username) -> dict[str, Any]:
    return ctx.service.users.get_user(username)


@router.post("/users", status_code=201, responses=error_responses(*SIGNED_IN, 409), response_model=UserOut)
def create_user(body: NewUser, ctx: UsersAdmin) -> dict[str, Any]:
    """A new user (``password`` optional: a token-only user)."""
    ctx.audit_object = body.username
    ctx.audit_detail = f"role={body.role} pii_restricted={body.pii_restricted}"
    return ctx.service.users.create_user(
        body.username, password=body.password, role=body.role, pii_restricted=body.pii_restricted, actor=ctx.user
    )


@router.patch("/users/{username}", responses=error_responses(*SIGNED_IN, 404, 409), response_model=UserOut)
def update_user(body: UserChanges, ctx: UsersAdmin, username: str = Username) -> dict[str, Any]:
    """Change ``role``, ``password``, ``pii_restricted`` or ``disabled``."""
    changes = body.model_dump(exclude_unset=True)
    ctx.audit_detail = ", ".join(f"{k}={v}" if k != "password" else "password changed" for k, v in sorted(changes.items()))
    return ctx.service.users.update_user(username, changes, actor=ctx.user)


@router.delete("/users/{username}", responses=error_responses(*SIGNED_IN, 404, 409))
def delete_user(ctx: UsersAdmin, username: str = Username) -> dict[str, Any]:
    ctx.service.users.delete_user(username)
    return {"deleted": username}


@router.get("/users/{username}/tokens", responses=error_responses(*SIGNED_IN, 404), response_model=list[TokenOut])
def list_tokens(ctx: UsersRead, username: str = Username) -> list[dict[str, Any]]:
    """The user's API tokens without their secrets (prefix, label, dates, active/expired/revoked), newest first."""
    return ctx.service.users.list_tokens(username)


@router.post("/users/{username}/tokens", status_code=201, responses=error_responses(*SIGNED_IN, 404), response_model=CreatedToken)
def create_token(ctx: UsersAdmin, username: str = Username, body: NewToken | None = None) -> dict[str, Any]:
    """A new API token; the answer is the only place it is ever shown."""
    body = body or NewToken()
    users = ctx.service.users
    token = users.create_token(
        username, label=body.label, expires_in_days=body.expires_in_days, expires_at=body.expires_at, actor=ctx.user
    )
    made = next(t for t in users.list_tokens(username) if token.startswith(t["prefix"]))
    ctx.audit_detail = f"token {made['id']} expires {made['expires_at'] or 'never'}"
    return {"username": username, "token": token, "id": made["id"], "expires_at": made["expires_at"]}


@router.delete("/users/{username}/tokens/{token_id}", responses=error_responses(*SIGNED_IN, 404), response_model=TokenOut)
def revoke_token(ctx: UsersAdmin, token_id: int = Path(ge=1, le=2**62), username: str = Username) -> dict[str, Any]:
    """Revoke one token (by its id from the listing); it is refused (401) from now on."""
    return ctx.service.users.revoke_token(username, token_id)


@router.get("/audit", responses=error_responses(*SIGNED_IN))
def audit_log(
    ctx: AuditRead,
    limit: int = Query(100, ge=1, le=10_000),
    user: str | None = Query(None, max_length=MAX_NAME),
    action: str | None = Query(None, max_length=60),
) -> list[dict[str, Any]]:
    """Who changed what and when, newest first (``count``: calls one row stands for; refusals are aggregated)."""
    return audit.entries(ctx.service.store, limit=limit, user=user, action=action)
