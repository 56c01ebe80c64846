"""The FastAPI application: /api routers, error handlers, the web UI's static files at "/".

Example::

    app = create_app("crm")                 # opens the workspace and its store, once
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from segmenta.interfaces.api import errors
from segmenta.interfaces.api.routers import auth, definitions, members, model, segments, users, worker
from segmenta.interfaces.api.runtime import Service

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"


def create_app(workspace: str | Path | None = None, *, store_url: str | None = None, service: Service | None = None) -> FastAPI:
    """The service over ``workspace`` (or an already open :class:`Service`); closed when the app shuts down."""
    svc = service if service is not None else Service(workspace or "segmenta-workspace", store_url=store_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        svc.close()

    app = FastAPI(
        title="segmenta",
        summary="Customer segments over your data: build, estimate, publish, activate.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.service = svc
    errors.install(app)
    for module in (auth, users, model, definitions, segments, members, worker):
        app.include_router(module.router)
    if STATIC.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=STATIC, html=True), name="web")
    return app
