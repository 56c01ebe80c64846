"""Choose the engine a workspace runs on: ``engine:`` in ``segmenta.yaml`` or ``--engine``.

The names and their classes are the registry's (:data:`segmenta.engines.ENGINES`); each
engine class opens itself from its own section of ``segmenta.yaml`` (``Engine.open``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segmenta.engines import ENGINES, engine_class
from segmenta.engines.base import Engine
from segmenta.errors import RejectedInput

if TYPE_CHECKING:
    from segmenta.settings import Settings


def engine_name(config: Mapping[str, Any], override: str | None = None) -> str:
    """The chosen engine's name: ``override`` (the ``--engine`` option), else the config's, else duckdb."""
    default = next(iter(ENGINES))
    name = str(override or config.get("engine") or default).strip().lower()
    if name not in ENGINES:
        from segmenta.model.schema import hint

        where = "--engine" if override else "segmenta.yaml: engine"
        raise RejectedInput(f"{where}: unknown engine {name!r}{hint(name, ENGINES)}; known: {', '.join(ENGINES)}")
    return name


def make_engine(
    path: Path, config: Mapping[str, Any], override: str | None = None, *, settings: Settings | None = None
) -> Engine:
    """The engine for the workspace at ``path``, with the ``limits:`` of ``config`` applied (statement timeout).

    Only the chosen engine's module is imported (pyspark and psycopg only for theirs). ``settings``
    (:mod:`segmenta.settings`) carries the typed sections; without it they are read from ``config``.
    """
    from segmenta.engines.base import configure_limits

    if settings is None:
        from segmenta.settings import from_config

        engine_name(config, override)  # an unknown engine named as before: --engine or segmenta.yaml: engine
        settings = from_config(path, config, engine=override)
    return configure_limits(engine_class(settings.engine).open(path, settings.engine_section()), settings.config)


def new_workspace_config(config: Mapping[str, Any], override: str | None = None) -> dict[str, Any]:
    """The ``segmenta.yaml`` settings a new workspace records: ``config`` with its engine and what that engine needs."""
    name = engine_name(config, override)
    out: dict[str, Any] = {"version": 1, **config, "engine": name}
    section = engine_class(name).workspace_settings(out)
    if section:
        out[name] = section
    return out
