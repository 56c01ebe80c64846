"""Signing in and out: browser sessions (HttpOnly cookie) and who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from segmenta.errors import Unauthenticated
from segmenta.interfaces.api.auth import COOKIE, Read, describe, service_of
from segmenta.services import audit
from segmenta.services.users import SESSION_HOURS

router = APIRouter(prefix="/api/auth", tags=["auth"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: str


@router.post("/login")
def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    """Check the password and start a browser session (cookie ``segmenta_session``, HttpOnly, SameSite=Lax)."""
    service = service_of(request)
    try:
        user = service.users.authenticate(body.username, body.password)
    except Unauthenticated:
        known = any(u["username"] == body.username for u in service.users.list_users())
        audit.record(service.store, user=body.username if known else None, action="auth.login", obj="", outcome="unauthenticated")
        raise
    sid = service.users.start_session(user)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, sid, httponly=True, samesite="lax", secure=secure, max_age=SESSION_HOURS * 3600, path="/")
    audit.record(service.store, user=user.username, action="auth.login", obj=user.username)
    return {"user": user.to_json()}


@router.post("/logout")
def logout(request: Request, response: Response) -> dict[str, Any]:
    """End the browser session (if any) and clear the cookie."""
    sid = request.cookies.get(COOKIE)
    if sid:
        service_of(request).users.end_session(sid)
    response.delete_cookie(COOKIE, path="/")
    return {"ok": True}


@router.get("/me")
def me(ctx: Read) -> dict[str, Any]:
    """The signed-in user: username, role, pii_restricted."""
    return ctx.user.to_json()


@router.get("/roles")
def roles(ctx: Read) -> dict[str, Any]:
    """Which roles may do which action (for the UI to hide what the user cannot do)."""
    return {"roles": ["admin", "operator", "marketer", "viewer"], "actions": describe()}
