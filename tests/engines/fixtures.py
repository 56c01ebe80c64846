"""One engine fixture: the same tests run on DuckDB and on PostgreSQL (ibis-style).

A test module declares ``pytest_plugins = ["tests.engines.fixtures"]`` (a conftest below
the root may not) and asks for ``engine_name`` (``duckdb``, then ``postgres``) or a workspace from
``make_ws``. The PostgreSQL half needs the server at 127.0.0.1:5432 (database ``test``,
trust auth): without it, it skips on a laptop and fails in CI. Every workspace made here
lives in schemas of its own, dropped when the test is done. Known gaps are marked with
``helpers.gap`` (``xfail(raises=..., strict=True)``), never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import segmenta
from tests.conftest import need
from tests.engines.helpers import ENGINES, PG_CANDIDATES, WorkspaceFactory, drop, workspace_on


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The URL of the test server (the first of postgres@ and root@ that connects)."""
    import psycopg

    reasons = []
    for url in PG_CANDIDATES:
        try:
            psycopg.connect(url, connect_timeout=3).close()
            return url
        except psycopg.OperationalError as exc:
            reasons.append(str(exc).strip().splitlines()[0])
    need(False, f"PostgreSQL on 127.0.0.1:5432, database test ({'; '.join(reasons)})")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """``duckdb``, then ``postgres``."""
    if request.param == "postgres":
        request.getfixturevalue("pg_url")
    return str(request.param)


@pytest.fixture
def make_ws(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WorkspaceFactory]:
    """``make_ws(model=..., name=...)``: a fresh workspace on the engine under test, removed afterwards."""
    opened: list[segmenta.Workspace] = []

    def make(*, model: Any, name: str = "ws") -> segmenta.Workspace:
        ws = workspace_on(engine_name, request, tmp_path / name, model=model)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        drop(ws)
