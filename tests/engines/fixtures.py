"""One engine fixture and one store fixture: the same tests run on every engine and store (ibis-style).

The root conftest registers this module as a plugin, so any test may ask for:

- ``engine_name``: ``duckdb``, ``postgres``, then ``spark`` (under the ``spark`` marker), or a
  workspace from ``make_ws``;
- ``store_kind``: ``sqlite``, then ``postgres``, and ``store_url`` (``None`` for the workspace's
  SQLite file, else the URL of a fresh PostgreSQL schema, dropped after the test).

PostgreSQL needs the server at 127.0.0.1:5432 (database ``test``, trust auth) and Spark needs
pyspark and Java 17: without them a test skips on a laptop and fails in CI. Every workspace made
here lives in schemas or directories of its own, dropped when the test is done.

Spark starts a JVM and answers a query in about a second, so a module runs it on a subset:
``SPARK_CASES`` in the module is either a number N (the first N cases of each test function) or
a collection of names (``test_x`` for every case of a test, ``test_x[case]`` for one). A module
without it runs every case on Spark. ``SPARK_ON_PG_STORE`` narrows the Spark x PostgreSQL-store
corner the same way (default: the same subset). The cases left out are *deselected* (reported as
such), not skipped.

Known gaps are marked ``@pytest.mark.gap(engine, store=None, raises=SomeError, reason=...)``
(or ``helpers.gap`` inside a test): on that engine (and store) the test becomes
``xfail(raises=..., strict=True)``, so it fails the day the gap is closed. Never skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

import segmenta
from tests.conftest import need
from tests.engines.helpers import ENGINES, PG_CANDIDATES, STORES, WorkspaceFactory, drop, workspace_on

#: The Spark master of the run's one session (``local[2]``: two cores, as CI has).
SPARK_MASTER = os.environ.get("SEGMENTA_SPARK_MASTER", "local[2]")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gap(engine, store=None, raises=Error, reason=...): a known gap of that engine (and store): "
        "xfail(raises=..., strict=True) there",
    )


# -- servers ---------------------------------------------------------------------------------


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


@pytest.fixture(scope="session")
def spark_session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The process's one SparkSession (``local[2]``); every workspace opened with engine spark shares it.

    Idempotent (a module that imports this fixture gets a second definition of it): the session is
    made once per process and stopped once, when the run ends, not when one definition's scope does.
    """
    need(importlib.util.find_spec("pyspark") is not None, "pyspark (pip install -e '.[dev]')")
    need(bool(shutil.which("java") or os.environ.get("JAVA_HOME")), "Java 17+ for Spark")
    from segmenta.engines.spark import SparkSettings, session, stop_session

    config = request.config
    if not hasattr(config, "_segmenta_spark"):
        os.environ["SEGMENTA_SPARK_MASTER"] = SPARK_MASTER  # every workspace opened below resolves to this session
        warehouse = tmp_path_factory.mktemp("spark-warehouse")
        config._segmenta_spark = session(SparkSettings(master=SPARK_MASTER, conf={"spark.sql.warehouse.dir": str(warehouse)}))  # type: ignore[attr-defined]
        config.add_cleanup(stop_session)
    return config._segmenta_spark  # type: ignore[attr-defined]


# -- the engine fixture ----------------------------------------------------------------------


@pytest.fixture(scope="session", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """``duckdb``, ``postgres``, then ``spark`` (the server or the session is checked first)."""
    if request.param == "postgres":
        request.getfixturevalue("pg_url")
    elif request.param == "spark":
        request.getfixturevalue("spark_session")
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


# -- the store fixture -----------------------------------------------------------------------


@pytest.fixture()
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A fresh schema in database ``test``, as a store URL whose search_path is that schema (dropped afterwards)."""
    import psycopg

    schema = f"seg_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=3) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=3) as con:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` (the workspace's file), then ``postgres`` (a schema on the test server)."""
    return str(request.param)


@pytest.fixture()
def store_url(store_kind: str, request: pytest.FixtureRequest) -> str | None:
    """The store URL for ``store_kind``: ``None`` (the workspace's SQLite file) or a fresh PostgreSQL schema."""
    return str(request.getfixturevalue("pg_schema_url")) if store_kind == "postgres" else None


# -- the Spark subset and the known gaps -----------------------------------------------------


def _case_name(item: pytest.Item, engine: str) -> str:
    """``test_x[case]``: the item's name without the engine's part of its id."""
    name = item.name
    for old, new in ((f"[{engine}-", "["), (f"-{engine}-", "-"), (f"-{engine}]", "]"), (f"[{engine}]", "")):
        name = name.replace(old, new)
    return name


def _in_subset(item: pytest.Item, subset: int | Collection[str] | None, seen: Counter[tuple[str, str]]) -> bool:
    if subset is None:
        return True
    if isinstance(subset, int):
        key = (item.nodeid.split("::")[0], getattr(item, "originalname", item.name))
        seen[key] += 1
        return seen[key] <= subset
    return getattr(item, "originalname", item.name) in subset or _case_name(item, "spark") in subset


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply ``gap`` markers for the item's engine and store, and keep Spark to each module's subset."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    seen: Counter[tuple[str, str]] = Counter()
    seen_pg: Counter[tuple[str, str]] = Counter()
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        engine, store = params.get("engine_name"), params.get("store_kind")
        for mark in item.iter_markers("gap"):
            engines = mark.args
            on_store = mark.kwargs.get("store")
            if (engine in engines or not engines) and (on_store is None or on_store == store):
                item.add_marker(pytest.mark.xfail(raises=mark.kwargs["raises"], reason=mark.kwargs["reason"], strict=True))
        if engine == "spark":
            module = getattr(item, "module", None)
            subset = getattr(module, "SPARK_CASES", None)
            keep = _in_subset(item, subset, seen)
            if keep and store == "postgres":
                keep = _in_subset(item, getattr(module, "SPARK_ON_PG_STORE", subset), seen_pg)
            if not keep:
                dropped.append(item)
                continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
