"""Who may call what: roles, the permission table, and the per-request context.

Every /api route but login depends on :func:`allow` with one *action* of :data:`PERMISSIONS`.
The dependency signs the caller in (the ``segmenta_session`` cookie or an
``Authorization: Bearer`` token), checks the role, takes the write lock for mutating
actions, and records every mutating call in the audit log with its outcome, allowed or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel

from segmenta.errors import PermissionDenied, Unauthenticated
from segmenta.interfaces.api.errors import status_of
from segmenta.interfaces.api.runtime import Service
from segmenta.model.schema import Model
from segmenta.services import audit
from segmenta.services.segments import Segments
from segmenta.services.users import UserInfo
from segmenta.workspace import Workspace

COOKIE = "segmenta_session"
ALL = frozenset({"admin", "operator", "marketer", "viewer"})
BUILD = frozenset({"admin", "marketer"})
RUN = frozenset({"admin", "operator"})
BUILD_OR_RUN = BUILD | RUN

#: action -> roles allowed. Reads (GET, and validate/estimate/preview/sql) are "read".
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": ALL,
    "segments.create": BUILD,
    "segments.edit": BUILD,
    "segments.rename": BUILD,
    "segments.delete": BUILD,
    "segments.restore": BUILD,
    "segments.publish": BUILD_OR_RUN,
    "segments.import": BUILD_OR_RUN,
    "segments.members": BUILD_OR_RUN,
    "segments.stop": RUN,
    "segments.refresh": RUN,
    "segments.activate": RUN,
    "segments.configure": RUN,
    "tables.load": RUN,
    "worker.run": RUN,
    "audit.read": RUN,
    "users.read": frozenset({"admin"}),
    "users.admin": frozenset({"admin"}),
}
#: Actions that change nothing and are not audited.
READS = frozenset({"read", "audit.read", "users.read"})


@dataclass
class Ctx:
    """One request's caller and the service, with a workspace view opened on first use."""

    service: Service
    user: UserInfo
    action: str
    #: What the audit entry names as the object (the route fills it in when the path does not say).
    audit_object: str = ""
    audit_detail: str = ""
    _stack: ExitStack = field(default_factory=ExitStack)
    _segs: Segments | None = None

    @property
    def model(self) -> Model:
        """The model this user may see (no PII columns when restricted)."""
        return self.service.model_for(self.user)

    @property
    def restricted(self) -> bool:
        return self.user.pii_restricted

    @property
    def segs(self) -> Segments:
        if self._segs is None:
            self._segs = self._stack.enter_context(self.service.segments())
        return self._segs

    @property
    def ws(self) -> Workspace:
        return self.segs.ws

    def close(self) -> None:
        self._stack.close()


class ProblemOut(BaseModel):
    where: str
    message: str


class ErrorOut(BaseModel):
    type: str
    message: str
    problems: list[ProblemOut]


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"type", "message", "problems": [{"where", "message"}]}}``."""

    error: ErrorOut


WHY = {
    400: "Malformed request (e.g. a Content-Length that is not a number)",
    401: "Not signed in, or the token is unknown, expired or revoked",
    403: "The role does not allow this, or a cross-origin request signed in by the session cookie",
    404: "No such user, token or object",
    409: "Clashes with the current state (a name taken, the last admin)",
    413: "The request body is over service.max_body_bytes (uploads: service.max_upload_bytes)",
    422: "Rejected input; nothing changed",
    429: "Too many failed sign-ins; wait Retry-After seconds",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer (for FastAPI's ``responses=``)."""
    out: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody, "description": WHY[code]} for code in codes}
    if 429 in out:
        out[429]["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return out


#: What every route that signs the caller in can answer besides its own errors.
SIGNED_IN = (401, 403, 413, 422)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def signed_in(request: Request) -> UserInfo:
    """The caller, from the bearer token or the session cookie; 401 otherwise."""
    users = service_of(request).users
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        user = users.by_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if user is None:
            raise Unauthenticated("the API token is not valid (send 'Authorization: Bearer <token>')")
        return user
    sid = request.cookies.get(COOKIE)
    user = users.by_session(sid) if sid else None
    if user is None:
        raise Unauthenticated("sign in first: POST /api/auth/login, or send 'Authorization: Bearer <token>'")
    return user


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (uvicorn applies X-Forwarded-For from trusted proxies only)."""
    return request.client.host if request.client else "unknown"


def _label(request: Request, action: str) -> str:
    """The audit action: the route's module and function (``segments.publish``, ``users.create_user``)."""
    endpoint = request.scope.get("endpoint")
    if endpoint is None:
        return action
    return f"{endpoint.__module__.rsplit('.', 1)[-1]}.{endpoint.__name__}"


def _object(request: Request) -> str:
    params = request.path_params
    return "/".join(str(params[k]) for k in ("table", "ref", "name", "username", "version", "token_id") if k in params)


def allow(action: str) -> Callable[[Request], Iterator[Ctx]]:
    """A dependency: sign in, check ``action`` against the role, lock and audit when it mutates."""
    roles = PERMISSIONS[action]
    mutating = action not in READS

    def dependency(request: Request) -> Iterator[Ctx]:
        service = service_of(request)
        label = _label(request, action)
        try:
            user = signed_in(request)
        except Unauthenticated:
            if mutating:  # anyone can send these, at any rate: one aggregated row per address and minute
                audit.record_refusal(service.store, address=client_address(request), action=label, obj=_object(request))
            raise
        if user.role not in roles:
            if mutating:
                audit.record(service.store, user=user.username, action=label, obj=_object(request), outcome="denied")
            raise PermissionDenied(f"{user.role} may not do {action}; allowed: {', '.join(sorted(roles))}")
        ctx = Ctx(service, user, action, audit_object=_object(request))
        try:
            if not mutating:
                yield ctx
                return
            with service.write_lock:
                try:
                    yield ctx
                except Exception as exc:
                    _, outcome = status_of(exc)
                    audit.record(
                        service.store,
                        user=user.username,
                        action=label,
                        obj=ctx.audit_object,
                        outcome=outcome,
                        detail=type(exc).__name__,
                    )
                    raise
                audit.record(service.store, user=user.username, action=label, obj=ctx.audit_object, detail=ctx.audit_detail)
        finally:
            ctx.close()

    return dependency


def roles_for(action: str) -> list[str]:
    return sorted(PERMISSIONS[action])


def describe() -> dict[str, Any]:
    """The permission table as data (served at /api/auth/roles for the UI)."""
    return {action: roles_for(action) for action in PERMISSIONS}


def _need(action: str) -> Any:
    # scope="function": the dependency ends with the route function, before the answer is sent,
    # so the write lock is released and the audit entry written by the time the client reads it.
    return Depends(allow(action), scope="function")


Read = Annotated[Ctx, _need("read")]
UsersRead = Annotated[Ctx, _need("users.read")]
UsersAdmin = Annotated[Ctx, _need("users.admin")]
AuditRead = Annotated[Ctx, _need("audit.read")]
Create = Annotated[Ctx, _need("segments.create")]
Edit = Annotated[Ctx, _need("segments.edit")]
Rename = Annotated[Ctx, _need("segments.rename")]
Delete = Annotated[Ctx, _need("segments.delete")]
Restore = Annotated[Ctx, _need("segments.restore")]
Publish = Annotated[Ctx, _need("segments.publish")]
Import = Annotated[Ctx, _need("segments.import")]
ChangeMembers = Annotated[Ctx, _need("segments.members")]
Stop = Annotated[Ctx, _need("segments.stop")]
Refresh = Annotated[Ctx, _need("segments.refresh")]
Activate = Annotated[Ctx, _need("segments.activate")]
Configure = Annotated[Ctx, _need("segments.configure")]
LoadTable = Annotated[Ctx, _need("tables.load")]
RunWorker = Annotated[Ctx, _need("worker.run")]
