"""Engines run compiled sqlglot trees and return member keys.

``base.Engine`` is the protocol (shared, final behaviour around a few hooks with SQL
defaults); ``duckdb``, ``postgres`` and ``spark`` fill them in. This module is the registry:
an engine's name (``engine:`` in segmenta.yaml, ``--engine``) to the class that opens it,
imported only when chosen (no pyspark or psycopg for a DuckDB user). Services and the
workspace get a concrete engine here, never by importing its module: a fourth engine is
one module and one line in :data:`ENGINES` (docs/engines.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmenta.engines.base import Engine

#: name -> "module:Class" of the engine; the first is the default.
ENGINES: dict[str, str] = {
    "duckdb": "segmenta.engines.duckdb:DuckDBEngine",
    "spark": "segmenta.engines.spark:SparkEngine",
    "postgres": "segmenta.engines.postgres:PostgresEngine",
}

#: The engine that reads and writes local files (CSV, Parquet) and holds scratch tables in memory:
#: an upload is parsed and counted there whatever engine holds the data.
LOCAL = "duckdb"


def engine_class(name: str) -> type[Engine]:
    """The class of the engine registered as ``name`` (its module imported now); KeyError when unknown."""
    module, _, cls = ENGINES[name].partition(":")
    engine: type[Engine] = getattr(import_module(module), cls)
    return engine


def local_engine() -> Engine:
    """A new in-memory engine for local files and scratch tables (no time limit: it works on the user's file)."""
    return engine_class(LOCAL).scratch()
