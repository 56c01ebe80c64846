"""One SparkSession for the whole run, and the engine fixture every engine test is parametrised by.

Tests ask for ``engine_name`` (or a workspace built on it) and run once on DuckDB and once
on Spark; the Spark half carries the ``spark`` marker (``-m 'not spark'`` skips it on a
laptop; CI runs it, with ``local[2]``). Without pyspark or Java the Spark half skips
locally and fails in CI.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import segmenta
from tests.conftest import need

MASTER = os.environ.get("SEGMENTA_SPARK_MASTER", "local[2]")

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The process's SparkSession (local[2]); workspaces opened with engine spark share it."""
    need(importlib.util.find_spec("pyspark") is not None, "pyspark (pip install -e '.[dev]')")
    need(bool(shutil.which("java") or os.environ.get("JAVA_HOME")), "Java 17+ for Spark")
    from segmenta.engines.spark import SparkSettings, session, stop_session

    os.environ["SEGMENTA_SPARK_MASTER"] = MASTER  # every workspace opened below resolves to this session
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    spark = session(SparkSettings(master=MASTER, conf={"spark.sql.warehouse.dir": str(warehouse)}))
    yield spark
    stop_session()


@pytest.fixture(scope="session", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """``duckdb``, then ``spark`` (under the ``spark`` marker)."""
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return str(request.param)


WorkspaceFactory = Callable[..., segmenta.Workspace]


@pytest.fixture
def make_ws(engine_name: str, tmp_path: Path) -> Iterator[WorkspaceFactory]:
    """``make_ws(model=..., name=...)``: a fresh workspace on the engine under test."""
    opened: list[segmenta.Workspace] = []

    def make(*, model: Any, name: str = "ws") -> segmenta.Workspace:
        ws = segmenta.Workspace.init(tmp_path / name, model=model, engine=engine_name)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


@pytest.fixture(scope="session")
def conformance_on(
    engine_name: str, conformance_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[segmenta.Workspace]:
    """The conformance model and data, loaded into a workspace on the engine under test (read-only use)."""
    path = tmp_path_factory.mktemp(f"conformance-{engine_name}") / "ws"
    ws = segmenta.Workspace.init(path, model=conformance_dir / "model.yaml", engine=engine_name)
    for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
        ws.load(csv_file.stem, csv_file)
    yield ws
    ws.close()
