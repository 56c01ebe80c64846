"""Signing in and out: browser sessions (HttpOnly cookie) and who am I.

Sign-in is throttled per account and per client address (see :class:`segmenta.services.users.Throttle`):
a locked-out attempt answers 429 with ``Retry-After``, whatever the password.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from segmenta.errors import Unauthenticated
from segmenta.interfaces.api.auth import COOKIE, Read, client_address, describe, error_responses, service_of
from segmenta.services import audit
from segmenta.services.users import MAX_NAME, MAX_PASSWORD, SESSION_HOURS, TooManyAttempts

router = APIRouter(prefix="/api/auth", tags=["auth"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=MAX_NAME, pattern=r"^[^\x00]*$")
    password: str = Field(min_length=1, max_length=MAX_PASSWORD, pattern=r"^[^\x00]*$")


class SignedIn(BaseModel):
    user: dict[str, Any]


@router.post("/login", responses=error_responses(401, 403, 413, 422, 429), response_model=SignedIn)
def login(body: Login, request: Request, response: Response) -> Any:
    """Check the password and start a browser session (cookie ``segmenta_session``, HttpOnly, SameSite=Lax).

    After repeated failures of one account or from one address, every attempt is refused
    for a growing while (429 with ``Retry-After``), the right password too.
    """
    service = service_of(request)
    address = client_address(request)
    try:
        user = service.users.login(body.username, body.password, address=address)
    except TooManyAttempts as exc:
        audit.record_refusal(service.store, address=address, action="auth.login", obj=body.username, outcome="throttled")
        return JSONResponse(
            {"error": {"type": "TooManyAttempts", "message": str(exc), "problems": []}},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except Unauthenticated:
        known = any(u["username"] == body.username for u in service.users.list_users())
        audit.record_refusal(
            service.store, address=address, action="auth.login", user=body.username if known else None, outcome="unauthenticated"
        )
        raise
    sid = service.users.start_session(user)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, sid, httponly=True, samesite="lax", secure=secure, max_age=SESSION_HOURS * 3600, path="/")
    audit.record(service.store, user=user.username, action="auth.login", obj=user.username)
    return {"user": user.to_json()}


@router.post("/logout", responses=error_responses(403, 413))
def logout(request: Request, response: Response) -> dict[str, Any]:
    """End the browser session (if any) and clear the cookie."""
    sid = request.cookies.get(COOKIE)
    if sid:
        service_of(request).users.end_session(sid)
    response.delete_cookie(COOKIE, path="/")
    return {"ok": True}


@router.get("/me", responses=error_responses(401))
def me(ctx: Read) -> dict[str, Any]:
    """The signed-in user: username, role, pii_restricted."""
    return ctx.user.to_json()


@router.get("/roles", responses=error_responses(401))
def roles(ctx: Read) -> dict[str, Any]:
    """Which roles may do which action (for the UI to hide what the user cannot do)."""
    return {"roles": ["admin", "operator", "marketer", "viewer"], "actions": describe()}
