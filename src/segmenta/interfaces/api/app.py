"""The FastAPI application: /api routers, error handlers, HTTP hardening, the web UI's static files at "/".

Example::

    app = create_app("crm")                 # opens the workspace and its store, once
    uvicorn.run(app, host="127.0.0.1", port=8000)

Every request passes three guards (pure ASGI middleware, outermost first):

- :class:`SecurityHeaders`: CSP, ``X-Content-Type-Options``, ``Referrer-Policy`` and
  ``X-Frame-Options`` on every answer.
- :class:`BodyCap`: a request body over ``service.max_body_bytes`` (uploads:
  ``service.max_upload_bytes``) is refused with 413 as soon as it is known to be too big
  (``Content-Length`` first; a chunked body is counted while it streams, never buffered whole).
- :class:`CsrfGuard`: a state-changing request authenticated by the session cookie is refused
  (403) when the browser says it comes from another origin (``Sec-Fetch-Site``/``Origin``).

Settings (``segmenta.yaml``)::

    service:
      max_body_bytes: 1048576        # JSON bodies, default 1 MiB
      max_upload_bytes: 268435456    # CSV/Parquet uploads, default 256 MiB
      login_free_failures: 5         # failed sign-ins of one account before the delay starts
      login_max_delay_seconds: 900   # the delay doubles per further failure, up to this
      max_evaluate_keys: 100000      # most keys /api/definitions/evaluate lists (the count stays exact)
      max_member_keys: 100000        # most keys one members/add or members/remove request may send
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmenta.errors import Problem, RejectedInput
from segmenta.interfaces.api import errors
from segmenta.interfaces.api.auth import error_responses
from segmenta.interfaces.api.routers import assignment as assignment_router
from segmenta.interfaces.api.routers import auth, definitions, members, model, segments, users, worker
from segmenta.interfaces.api.routers import destinations as destinations_router
from segmenta.interfaces.api.routers import events as events_router
from segmenta.interfaces.api.routers import journeys as journeys_router
from segmenta.interfaces.api.routers import records as records_router
from segmenta.interfaces.api.routers import sequences as sequences_router
from segmenta.interfaces.api.runtime import Service
from segmenta.services.users import Throttle

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"

MiB = 1024 * 1024
#: setting -> (default, lowest, highest)
SETTINGS: dict[str, tuple[int, int, int]] = {
    "max_body_bytes": (1 * MiB, 1024, 1024 * MiB),
    "max_upload_bytes": (256 * MiB, 1024, 64 * 1024 * MiB),
    "login_free_failures": (5, 1, 1000),
    "login_max_delay_seconds": (900, 1, 86_400),
    "max_evaluate_keys": (100_000, 1, 10_000_000),
    "max_member_keys": (100_000, 1, 10_000_000),
}
#: Routes whose body is a file upload (they stream it to disk), with the larger cap.
UPLOADS = (re.compile(r"^/api/segments/[^/]+/import-csv/?$"), re.compile(r"^/api/tables/[^/]+/load/?$"))
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


@dataclass(frozen=True)
class HttpSettings:
    """The ``service:`` section of ``segmenta.yaml``, checked."""

    max_body_bytes: int = SETTINGS["max_body_bytes"][0]
    max_upload_bytes: int = SETTINGS["max_upload_bytes"][0]
    login_free_failures: int = SETTINGS["login_free_failures"][0]
    login_max_delay_seconds: int = SETTINGS["login_max_delay_seconds"][0]
    max_evaluate_keys: int = SETTINGS["max_evaluate_keys"][0]
    max_member_keys: int = SETTINGS["max_member_keys"][0]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> HttpSettings:
        """Read ``service.*``; a bad value is rejected naming its key and the allowed range."""
        section = (config or {}).get("service") or {}
        if not isinstance(section, Mapping):
            raise RejectedInput([Problem("segmenta.yaml: service", "must be a mapping of settings")])
        values: dict[str, int] = {}
        problems = []
        for key, (default, low, high) in SETTINGS.items():
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(
                    Problem(f"segmenta.yaml: service.{key}", f"must be a whole number from {low:,} to {high:,}, not {value!r}")
                )
            else:
                values[key] = value
        if problems:
            raise RejectedInput(problems)
        return cls(**values)


async def _answer(send: Send, status: int, kind: str, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"error": {"type": kind, "message": message, "problems": []}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class SecurityHeaders:
    """Adds the security headers to every HTTP answer (a route's own CSP, e.g. /docs's, wins)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyCap:
    """Refuses a request body over its cap with 413, before reading it (Content-Length) or while it streams."""

    def __init__(self, app: ASGIApp, settings: HttpSettings) -> None:
        self.app = app
        self.settings = settings

    def _cap(self, scope: Scope) -> tuple[int, str]:
        path = scope.get("path", "")
        if scope.get("method") == "POST" and any(p.match(path) for p in UPLOADS):
            return self.settings.max_upload_bytes, "service.max_upload_bytes"
        return self.settings.max_body_bytes, "service.max_body_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap, setting = self._cap(scope)
        message = (
            f"the request body is larger than the limit of {cap:,} bytes; "
            f"send less, or raise {setting} in the workspace's segmenta.yaml"
        )
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _answer(send, 400, "RejectedInput", f"Content-Length must be a whole number of bytes, not {declared!r}")
                return
            if int(declared) > cap:
                await _answer(send, 413, "PayloadTooLarge", message, ((b"connection", b"close"),))
                return
        seen = 0
        over = False  # the body ran over the cap: the app reads no more of it
        started = False  # the app's answer had begun (then it is left to finish it)
        refused = False  # our 413 went out

        async def counted() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            got = await receive()
            if got["type"] == "http.request":
                seen += len(got.get("body", b""))
                if seen > cap:
                    over = True  # the app sees the client gone; the answer is ours
                    return {"type": "http.disconnect"}
            return got

        async def guarded_send(msg: Message) -> None:
            nonlocal started, refused
            if over and not started:
                if not refused:
                    refused = True
                    await _answer(send, 413, "PayloadTooLarge", message, ((b"connection", b"close"),))
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started and not refused:
            await _answer(send, 413, "PayloadTooLarge", message, ((b"connection", b"close"),))


def _origin_of(scope: Scope) -> str:
    """``scheme://host:port`` of the request itself (default ports spelled out)."""
    scheme = scope.get("scheme", "http")
    host = _header(scope, b"host")
    if not host:
        server = scope.get("server") or ("", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    return _normal(f"{scheme}://{host}")


def _normal(origin: str) -> str:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    return f"{parts.scheme.lower()}://{parts.hostname.lower()}:{port}"


class CsrfGuard:
    """Refuses cross-origin state-changing requests that a browser authenticates with the session cookie.

    A request is refused when it changes state (POST, PUT, PATCH, DELETE), carries no
    ``Authorization`` header (so the cookie, or nothing, would sign it in; sign-in itself too),
    and either ``Sec-Fetch-Site`` is present and not ``same-origin``/``none``, or ``Origin`` is
    present and differs from the request's own ``scheme://host:port``. Bearer-token callers
    are never affected; browsers send both headers on ``fetch()``, so the web UI needs no token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in UNSAFE or _header(scope, b"authorization"):
            await self.app(scope, receive, send)
            return
        site = _header(scope, b"sec-fetch-site")
        origin = _header(scope, b"origin")
        why = ""
        if site is not None and site.strip().lower() not in ("same-origin", "none"):
            why = f"Sec-Fetch-Site is {site.strip()!r}"
        elif origin is not None and _normal(origin) != _origin_of(scope):
            why = f"Origin {origin.strip()!r} is not this service's origin"
        if why:
            await self._audit(scope)
            await _answer(
                send,
                403,
                "PermissionDenied",
                f"cross-origin request refused: {why}; a state-changing call signed in by the session cookie "
                "must come from the service's own pages (API clients: send 'Authorization: Bearer <token>')",
            )
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _audit(scope: Scope) -> None:
        """One aggregated audit row per client address and minute (anyone's page can send these)."""
        from anyio import to_thread

        from segmenta.services import audit

        service = getattr(getattr(scope.get("app"), "state", None), "service", None)
        if service is None:
            return
        address = (scope.get("client") or ("unknown",))[0]
        action = f"{scope.get('method')} {scope.get('path', '')}"[:60]
        await to_thread.run_sync(
            lambda: audit.record_refusal(service.store, address=address, action=action, outcome="cross_origin")
        )


DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>segmenta API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
#: Swagger UI's start, an external file so that the CSP's script-src 'self' holds (no inline script).
DOCS_INIT = """// The bundled Swagger UI (4.x) reads OpenAPI 3.0 documents; /openapi.json is 3.1 (FastAPI), whose
// operations and schemas it renders as well once the version field says 3.0.
window.addEventListener("load", function () {
  fetch("/openapi.json", {credentials: "same-origin"})
    .then(function (answer) { return answer.json(); })
    .then(function (spec) {
      spec.openapi = "3.0.3";
      window.ui = SwaggerUIBundle({
        spec: spec,
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        validatorUrl: null,
        deepLinking: true
      });
    });
});
"""


def _install_docs(app: FastAPI) -> None:
    """/docs: Swagger UI served from the installed swagger-ui-bundle package (works offline, under the CSP)."""
    from fastapi.responses import HTMLResponse, Response
    from fastapi.staticfiles import StaticFiles

    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - a dependency; without it /docs says what to install
        swagger_ui_bundle = None

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        if swagger_ui_bundle is None:
            return HTMLResponse("<p>Install swagger-ui-bundle for /docs; the API is described at /openapi.json.</p>", 503)
        return HTMLResponse(DOCS_HTML)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(DOCS_INIT, media_type="text/javascript")

    if swagger_ui_bundle is not None:
        app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")


class WebMount(Mount):
    """The web UI at "/", never answering an /api path: a wrong method on an API route stays a 405 with its Allow,
    and an unknown API path a JSON 404 (a mount at "/" would otherwise take both, as the static files' 405/404)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if str(scope.get("path", "")).startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def create_app(workspace: str | Path | None = None, *, store_url: str | None = None, service: Service | None = None) -> FastAPI:
    """The service over ``workspace`` (or an already open :class:`Service`); closed when the app shuts down."""
    svc = service if service is not None else Service(workspace or "segmenta-workspace", store_url=store_url)
    try:
        settings = HttpSettings.from_config(svc.ws.config)
    except RejectedInput:
        if service is None:
            svc.close()
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        svc.close()

    app = FastAPI(
        title="segmenta",
        summary="Customer segments over your data: build, estimate, publish, activate.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # our own /docs below: local assets, no inline script
        openapi_url="/openapi.json",
        redoc_url=None,
        # Any route can answer 400 (a malformed body or Content-Length) and 413 (BodyCap, before the route runs).
        responses=error_responses(400, 413),
    )
    app.state.service = svc
    app.state.http_settings = settings
    svc.users.throttle = Throttle(free_failures=settings.login_free_failures, max_delay_seconds=settings.login_max_delay_seconds)
    errors.install(app)
    _install_docs(app)
    for module in (
        auth,
        users,
        model,
        definitions,
        segments,
        members,
        worker,
        records_router,
        journeys_router,
        destinations_router,
        assignment_router,
        events_router,
        sequences_router,
    ):
        app.include_router(module.router)
    if STATIC.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.router.routes.append(WebMount("/", app=StaticFiles(directory=STATIC, html=True), name="web"))
    # Added last = outermost: headers on every answer, then the body cap, then the CSRF check.
    app.add_middleware(CsrfGuard)
    app.add_middleware(BodyCap, settings=settings)
    app.add_middleware(SecurityHeaders)
    return app
