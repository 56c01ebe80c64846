"""Random definitions on random data: PostgreSQL finds exactly the reference's members.

The strategies and the check are the project's differential ones (``tests/test_differential.py``):
small random models, data over tiny domains (case, wildcards, backslashes, empties, window
edges to the second, dangling keys) and valid definitions, then every operator of every type
one at a time. Each query is a round trip to the server, so the example counts are modest;
``SEGMENTA_POSTGRES_DIFFERENTIAL_EXAMPLES`` and ``SEGMENTA_POSTGRES_SWEEP_EXAMPLES`` raise them.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmenta.engines.postgres import PostgresEngine, PostgresSettings
from tests.test_differential import (
    AS_OFS,
    DANGLING,
    SEGMENT_NAMES,
    SWEEP_MODEL,
    check_agree,
    datasets,
    definitions,
    models,
    sweep,
    workspace,
)

pytest_plugins = ["tests.engines.fixtures"]

EXAMPLES = int(os.environ.get("SEGMENTA_POSTGRES_DIFFERENTIAL_EXAMPLES", "40"))
SWEEP_EXAMPLES = int(os.environ.get("SEGMENTA_POSTGRES_SWEEP_EXAMPLES", "10"))
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[PostgresEngine]:
    """One engine in schemas of its own for the whole module (each example replaces its tables)."""
    schema = f"segmenta_diff_{uuid.uuid4().hex[:8]}"
    pg = PostgresEngine(PostgresSettings.from_config({"url": pg_url, "schema": schema}, workspace=Path(".")))
    yield pg
    pg.drop_schemas()
    pg.close()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW)
@given(st.data())
def test_postgres_agrees_with_the_reference(engine: PostgresEngine, data: st.DataObject) -> None:
    model = data.draw(models(), label="model")
    as_of: dt.datetime = data.draw(st.sampled_from(AS_OFS), label="as_of")
    rows = data.draw(datasets(model, as_of), label="data")
    segments = {name: set(data.draw(st.lists(st.integers(1, DANGLING), max_size=5), label=name)) for name in SEGMENT_NAMES}
    ws = workspace(engine, model, rows, segments)  # type: ignore[arg-type]  (any engine will do)
    for i in range(data.draw(st.integers(2, 6), label="how many definitions")):
        check_agree(ws, model, rows, data.draw(definitions(model), label=f"definition {i}"), as_of, segments)


@settings(max_examples=SWEEP_EXAMPLES, deadline=None, suppress_health_check=SLOW)
@given(st.data())
def test_every_operator_on_postgres_agrees_with_the_reference(engine: PostgresEngine, data: st.DataObject) -> None:
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    rows = data.draw(datasets(SWEEP_MODEL, as_of), label="data")
    segments: dict[str, set[int]] = {name: set() for name in SEGMENT_NAMES}
    ws = workspace(engine, SWEEP_MODEL, rows, segments)  # type: ignore[arg-type]
    for cond in data.draw(sweep(as_of), label="conditions"):
        check_agree(ws, SWEEP_MODEL, rows, {"audience": "t0", "groups": [{"where": cond}]}, as_of, segments)
