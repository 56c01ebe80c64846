"""Choose the engine a workspace runs on: ``engine:`` in ``segmenta.yaml`` or ``--engine``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segmenta.engines.base import Engine
from segmenta.errors import RejectedInput

ENGINES = ("duckdb", "spark", "postgres")
DATA_FILE = "data.duckdb"


def engine_name(config: Mapping[str, Any], override: str | None = None) -> str:
    """The chosen engine's name: ``override`` (the ``--engine`` option), else the config's, else duckdb."""
    name = str(override or config.get("engine") or "duckdb").strip().lower()
    if name not in ENGINES:
        from segmenta.model.schema import hint

        where = "--engine" if override else "segmenta.yaml: engine"
        raise RejectedInput(f"{where}: unknown engine {name!r}{hint(name, ENGINES)}; known: {', '.join(ENGINES)}")
    return name


def make_engine(path: Path, config: Mapping[str, Any], override: str | None = None) -> Engine:
    """The engine for the workspace at ``path``, with the ``limits:`` of ``config`` applied (statement timeout)."""
    from segmenta.engines.base import configure_limits

    return configure_limits(_new_engine(path, config, override), config)


def _new_engine(path: Path, config: Mapping[str, Any], override: str | None = None) -> Engine:
    """The engine for the workspace at ``path``; pyspark and psycopg are imported only for their engine."""
    name = engine_name(config, override)
    if name == "postgres":
        from segmenta.engines.postgres import PostgresEngine, PostgresSettings

        return PostgresEngine(PostgresSettings.from_config(config.get("postgres"), workspace=path))
    if name == "spark":
        from segmenta.engines.spark import SparkEngine, SparkSettings

        return SparkEngine(path, SparkSettings.from_config(config.get("spark")))
    from segmenta.engines.duckdb import DuckDBEngine, DuckDBSettings

    return DuckDBEngine(path / DATA_FILE, settings=DuckDBSettings.from_config(config.get("duckdb")))


def new_workspace_config(config: Mapping[str, Any], override: str | None = None) -> dict[str, Any]:
    """The ``segmenta.yaml`` settings a new workspace records: ``config`` with its engine and what that engine needs."""
    name = engine_name(config, override)
    out: dict[str, Any] = {"version": 1, **config, "engine": name}
    if name == "postgres":
        import uuid

        section = out.get("postgres")
        section = dict(section) if isinstance(section, Mapping) else {}
        # A schema of its own per workspace, recorded so that moving the directory moves nothing.
        section.setdefault("schema", f"segmenta_{uuid.uuid4().hex[:12]}")
        out["postgres"] = section
    return out
