"""Helpers for tests that run on every engine (the fixtures are in tests.engines.fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import segmenta

#: The engines every engine test runs on. Spark is slow (a JVM), so it carries the ``spark`` marker
#: and each module runs it on the subset its ``SPARK_CASES`` names (see tests.engines.fixtures).
ENGINES = ["duckdb", "postgres", pytest.param("spark", marks=pytest.mark.spark)]
#: The metadata stores (saved segments, users, audit): the workspace's SQLite file, or a PostgreSQL schema.
STORES = ["sqlite", "postgres"]
WorkspaceFactory = Callable[..., segmenta.Workspace]
PG_CANDIDATES = [
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
]


def settings_for(engine: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``segmenta.yaml`` settings a test workspace on ``engine`` needs."""
    if engine == "postgres":
        return {"postgres": {"url": request.getfixturevalue("pg_url")}}
    if engine == "spark":
        request.getfixturevalue("spark_session")  # the run's one session; the workspace resolves to it
    return {}


def workspace_on(engine: str, request: pytest.FixtureRequest, path: Path, **init: Any) -> segmenta.Workspace:
    """``Workspace.init(path, **init)`` on ``engine``."""
    return segmenta.Workspace.init(path, engine=engine, settings=settings_for(engine, request), **init)


def drop(ws: segmenta.Workspace) -> None:
    """Close ``ws``, dropping its PostgreSQL schemas first (DuckDB and Spark files go with tmp_path)."""
    try:
        if ws.engine.dialect == "postgres":
            ws.engine.drop_schemas()  # type: ignore[attr-defined]
    finally:
        ws.close()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``segmenta ARGS`` in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "segmenta", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def gap(request: pytest.FixtureRequest, engine: str, on: str, *, raises: type[BaseException], reason: str) -> None:
    """Mark the running test as a known gap (``xfail(raises=..., strict=True)``) when ``engine`` is ``on``."""
    if engine == on:
        request.applymarker(pytest.mark.xfail(raises=raises, reason=reason, strict=True))
