"""The ONE place where exceptions become HTTP answers (and audit outcomes).

Every error answer has one shape::

    {"error": {"type": "DefinitionError", "message": "...", "problems": [{"where": "/groups/0/where", "message": "..."}]}}

The problems are the CLI's (JSON pointers, "did you mean"). Engine errors never carry
their SQL to the caller (it may hold condition values), and unexpected errors answer a
bare 500 while the detail goes to the log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from segmenta.errors import (
    Conflict,
    EngineError,
    NotFound,
    PermissionDenied,
    RejectedInput,
    SegmentaError,
    Timeout,
    Unauthenticated,
)

log = logging.getLogger("segmenta.api")

#: Most specific first: the first class an exception is an instance of decides.
STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (Unauthenticated, 401, "unauthenticated"),
    (PermissionDenied, 403, "denied"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (RejectedInput, 422, "rejected"),
    (Timeout, 503, "timeout"),
    (SegmentaError, 500, "error"),
)
HTTP_TYPES = {
    401: "Unauthenticated",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "RejectedInput",
    503: "Unavailable",
}


class ProblemBody(BaseModel):
    where: str
    message: str


class ErrorDetail(BaseModel):
    type: str
    message: str
    problems: list[ProblemBody]


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"type", "message", "problems": [{"where", "message"}]}}``."""

    error: ErrorDetail


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: The error answers every /api route may give, for the OpenAPI document (``responses=RESPONSES``).
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("A malformed request: a body that is not valid JSON or form data, a bad Content-Length"),
    401: _doc("Not signed in: no valid session cookie or bearer token"),
    403: _doc("Signed in, but the role (or the PII restriction) does not allow this"),
    404: _doc("No such segment, table, user or file"),
    409: _doc("The object's state does not allow this (a name taken, a status change refused)"),
    413: _doc("The request body is over its limit (service.max_body_bytes / service.max_upload_bytes)"),
    422: _doc("Rejected input, one problem per place (JSON pointer) with what would be right"),
    503: _doc("A query ran over its time limit (limits.statement_timeout_s) and was cancelled"),
}


def status_of(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, audit outcome) of an exception."""
    for cls, status, outcome in STATUS:
        if isinstance(exc, cls):
            return status, outcome
    return 500, "error"


def error_body(exc: BaseException) -> dict[str, Any]:
    problems: list[dict[str, str]] = []
    if isinstance(exc, RejectedInput):
        problems = [{"where": p.where, "message": p.message} for p in exc.problems]
        message = str(exc)
    elif isinstance(exc, EngineError):
        message = str(exc).split("\n-- while running:")[0]
    elif isinstance(exc, SegmentaError):
        message = str(exc)
    else:
        message = "internal error; see the service log"
    return {
        "error": {
            "type": type(exc).__name__ if isinstance(exc, SegmentaError) else "InternalError",
            "message": message,
            "problems": problems,
        }
    }


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    extra = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    return JSONResponse(body, status_code=status, headers=extra or None)


async def _segmenta(_request: Request, exc: Exception) -> JSONResponse:
    status, _ = status_of(exc)
    if status == 500:
        log.error("%s: %s", type(exc).__name__, str(exc).split("\n-- while running:")[0])
    return _json(status, error_body(exc))


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            where = (
                "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in loc[1:])
                if loc[0] == "body"
                else f"{loc[0]}: {'.'.join(loc[1:])}"
            )
        else:
            where = "/".join(loc)
        problems.append({"where": where, "message": str(err.get("msg", "invalid"))})
    message = "\n".join(f"{p['where']}: {p['message']}" for p in problems)
    return _json(422, {"error": {"type": "RejectedInput", "message": message, "problems": problems}})


def _allowed(request: Request) -> list[str]:
    """Every method the OpenAPI document gives this path (Starlette's own Allow names only the first route's)."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods |= {m.upper() for m in operations if m.lower() in HTTP_METHODS}
    return sorted(methods)


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = HTTP_TYPES.get(exc.status_code, "HTTPError")
    headers = dict(exc.headers or {})  # the exception's own headers stay (a 401's challenge)
    message = str(exc.detail)
    if exc.status_code == 405:
        allowed = _allowed(request) or [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}"
    return _json(exc.status_code, {"error": {"type": kind, "message": message, "problems": []}}, headers)


async def _overflow(_request: Request, exc: Exception) -> JSONResponse:
    """A number or date beyond what Python or the engine represents (year 0 after an offset, 10**30, ...).

    The request's fault, so a 422 that says so rather than a bare 500; logged, since it lacks the
    JSON pointer a validator's message would carry.
    """
    log.warning("out-of-range value in a request: %s", exc, exc_info=exc)
    message = f"a number or date in the request is out of range ({exc}); use a smaller value"
    problems = [{"where": "", "message": message}]
    return _json(422, {"error": {"type": "RejectedInput", "message": message, "problems": problems}})


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected %s", type(exc).__name__, exc_info=exc)
    return _json(500, error_body(exc))


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(SegmentaError, _segmenta)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(Exception, _unexpected)
