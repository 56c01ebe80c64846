"""Random definitions on random data: DuckDB and Spark agree on every member.

The strategies are the project's differential ones (``tests/test_differential.py``): small
random models, data over tiny domains (case, wildcards, backslashes, empties, window edges
to the second, dangling keys) and valid definitions. Spark is slow per query, so the
example count is modest; ``SEGMENTA_SPARK_DIFFERENTIAL_EXAMPLES`` raises it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmenta import Workspace
from segmenta.engines.base import Engine
from segmenta.engines.duckdb import DuckDBEngine
from segmenta.engines.spark import SparkEngine, SparkSettings
from segmenta.model.schema import Model
from segmenta.model.validate import parse_definition
from segmenta.services.loading import arrow_schema
from tests import reference
from tests.test_differential import AS_OFS, DANGLING, SEGMENT_NAMES, datasets, definitions, models, segment_source

pytestmark = pytest.mark.spark

EXAMPLES = int(os.environ.get("SEGMENTA_SPARK_DIFFERENTIAL_EXAMPLES", "25"))


def _workspace(engine: Engine, model: Model, data: dict[str, list[dict[str, Any]]], segments: dict[str, set[int]]) -> Workspace:
    ws = Workspace(Path("differential"), model, engine, {})
    for name, table in model.tables.items():
        ws.engine.replace_table(name, table, pa.Table.from_pylist(data[name], schema=arrow_schema(table)))
    ws.segment_source = segment_source(model, segments)
    return ws


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_duckdb_and_spark_agree(spark_session: Any, data: st.DataObject) -> None:
    model = data.draw(models(), label="model")
    as_of: dt.datetime = data.draw(st.sampled_from(AS_OFS), label="as_of")
    rows = data.draw(datasets(model, as_of), label="data")
    segments = {name: set(data.draw(st.lists(st.integers(1, DANGLING), max_size=5), label=name)) for name in SEGMENT_NAMES}
    raw = data.draw(definitions(model), label="definition")
    definition = parse_definition(raw, model)
    with tempfile.TemporaryDirectory() as tmp:
        duck = _workspace(DuckDBEngine(), model, rows, segments)
        spark = _workspace(
            SparkEngine(tmp, SparkSettings.from_config({"master": os.environ.get("SEGMENTA_SPARK_MASTER", "local[2]")})),
            model,
            rows,
            segments,
        )
        try:
            by_duckdb = duck.evaluate(definition, as_of=as_of).keys
            by_spark = spark.evaluate(definition, as_of=as_of).keys
        finally:
            duck.close()
            spark.close()
    assert by_spark == by_duckdb, (
        f"Spark {by_spark} != DuckDB {by_duckdb}\nas_of {as_of}\ndefinition {json.dumps(raw)}\n"
        f"model {json.dumps(model.to_data())}\ndata {rows}\nspark sql {spark.sql(definition, dialect='spark', as_of=as_of)}"
    )
    # Both are the contract's answer, not just the same one.
    assert by_duckdb == reference.evaluate(model, rows, definition, as_of=as_of, segments=segments)
