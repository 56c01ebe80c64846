"""User administration (admin only) and the audit log (admin, operator)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from segmenta.interfaces.api.auth import AuditRead, UsersAdmin, UsersRead
from segmenta.services import audit

router = APIRouter(prefix="/api", tags=["users"])


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: str | None = None
    role: str
    pii_restricted: bool = False


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = ""


@router.get("/users")
def list_users(ctx: UsersRead) -> list[dict[str, Any]]:
    return ctx.service.users.list_users()


@router.get("/users/{username}")
def get_user(username: str, ctx: UsersRead) -> dict[str, Any]:
    return ctx.service.users.get_user(username)


@router.post("/users", status_code=201)
def create_user(body: NewUser, ctx: UsersAdmin) -> dict[str, Any]:
    """A new user (``password`` optional: a token-only user)."""
    ctx.audit_object = body.username
    ctx.audit_detail = f"role={body.role} pii_restricted={body.pii_restricted}"
    return ctx.service.users.create_user(
        body.username, password=body.password, role=body.role, pii_restricted=body.pii_restricted
    )


@router.patch("/users/{username}")
def update_user(username: str, body: dict[str, Any], ctx: UsersAdmin) -> dict[str, Any]:
    """Change ``role``, ``password``, ``pii_restricted`` or ``disabled``."""
    ctx.audit_detail = ", ".join(f"{k}={v}" if k != "password" else "password changed" for k, v in sorted(body.items()))
    return ctx.service.users.update_user(username, body)


@router.delete("/users/{username}")
def delete_user(username: str, ctx: UsersAdmin) -> dict[str, Any]:
    ctx.service.users.delete_user(username)
    return {"deleted": username}


@router.post("/users/{username}/tokens", status_code=201)
def create_token(ctx: UsersAdmin, username: str, body: NewToken | None = None) -> dict[str, Any]:
    """A new API token; the answer is the only place it is ever shown."""
    token = ctx.service.users.create_token(username, label=(body.label if body else ""))
    return {"username": username, "token": token}


@router.get("/audit")
def audit_log(
    ctx: AuditRead, limit: int = Query(100, ge=1, le=10_000), user: str | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    """Who changed what and when, newest first."""
    return audit.entries(ctx.service.store, limit=limit, user=user, action=action)
