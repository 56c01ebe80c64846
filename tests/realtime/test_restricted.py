"""Restricted evaluation: a segment evaluated for a set of keys only equals the full answer within those keys.

``compile_definition(..., restrict_to=<query of keys>)`` pushes the keys into the audience
scan and into every path's and related block's scan; a differential property on random
models, data, definitions and key sets (DuckDB) checks it gives the full evaluation
intersected with the keys, and a golden check that the restriction reaches the grouped CTEs.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from segmenta import Workspace
from segmenta.compiler.compile import compile_definition
from segmenta.engines.duckdb import DuckDBEngine
from segmenta.model.validate import parse_definition
from tests.test_differential import AS_OFS, DANGLING, MAX_KEY, SEGMENT_NAMES, datasets, definitions, models, workspace

EXAMPLES = int(os.environ.get("SEGMENTA_RESTRICTED_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def engine() -> DuckDBEngine:
    shared = DuckDBEngine()
    yield shared
    shared.close()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_restricted_evaluation_equals_the_full_answer_within_the_keys(engine: DuckDBEngine, data: st.DataObject) -> None:
    model = data.draw(models(), label="model")
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    rows = data.draw(datasets(model, as_of), label="data")
    segments = {name: set(data.draw(st.lists(st.integers(1, DANGLING), max_size=5), label=name)) for name in SEGMENT_NAMES}
    ws = workspace(engine, model, rows, segments)
    keys = data.draw(st.lists(st.integers(1, 3 * MAX_KEY + 2), unique=True, max_size=8), label="keys")
    staged = ws.engine.stage("restrict_keys", pa.table({"k": pa.array(keys, type=pa.int64())}))
    restrict = exp.select(exp.column("k", quoted=True)).from_(staged)
    for i in range(data.draw(st.integers(1, 5), label="how many definitions")):
        raw = data.draw(definitions(model), label=f"definition {i}")
        definition = parse_definition(raw, model)
        full = ws.evaluate(definition, as_of=as_of).keys
        query = compile_definition(definition, model, as_of=as_of, segments=ws.segment_source, restrict_to=restrict)
        restricted = ws.engine.column(query)
        assert restricted == sorted(set(full) & set(keys)), f"{raw}\nkeys {keys}\n{ws.engine.sql(query)}"


def test_the_restriction_reaches_every_grouped_scan(conformance_ws: Workspace) -> None:
    ws = conformance_ws
    definition = parse_definition(
        {
            "audience": "contact",
            "groups": [
                {"where": {"path": ["account"], "related": "contacts", "count": {"op": "gte", "value": 3}}},
                {"link": "and_also", "where": {"measure": "total_spend", "op": "gt", "value": 100}},
            ],
        },
        ws.model,
    )
    restrict = exp.select(exp.column("k", quoted=True)).from_("wanted")
    query = compile_definition(definition, ws.model, as_of=AS_OFS[0], restrict_to=restrict)
    ctes = list(query.find_all(exp.CTE))
    assert len(ctes) == 2
    for cte in ctes:
        assert "wanted" in cte.this.sql(), f"CTE {cte.alias} scans without the restriction: {cte.this.sql()}"
    unrestricted = compile_definition(definition, ws.model, as_of=AS_OFS[0])
    assert "wanted" not in unrestricted.sql()
