"""The sample CRM and every example segment: the same members on every engine.

The generator is seeded, so the same ``--contacts`` and ``--seed`` give the same records
wherever they are loaded; each example segment must then find the same members on DuckDB
and on PostgreSQL, and the members the reference evaluator finds in the generated rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlglot import exp

import segmenta
from tests import reference
from tests.engines.helpers import drop, workspace_on

pytest_plugins = ["tests.engines.fixtures"]
#: Spark (a Spark job per query) checks four examples that together use relations, aggregates, windows and groups.
SPARK_CASES = {
    "test_example_members_are_the_references[cart-abandoners]",
    "test_example_members_are_the_references[gold-managers-clicked-or-big-spenders]",
    "test_example_members_are_the_references[lapsed-buyers]",
    "test_example_members_are_the_references[newsletter-engaged]",
}

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.json"))
AS_OF = "2026-10-27T12:00:00"


@pytest.fixture(scope="module")
def sample_ws(
    engine_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[segmenta.Workspace]:
    mp = pytest.MonkeyPatch()
    mp.setenv("SEGMENTA_NOW", AS_OF)  # the generator's clock: dates relative to it
    try:
        ws = workspace_on(
            engine_name, request, tmp_path_factory.mktemp(f"sample-{engine_name}") / "ws", sample=True, contacts=400, seed=7
        )
    finally:
        mp.undo()
    yield ws
    drop(ws)


@pytest.fixture(scope="module")
def sample_rows(sample_ws: segmenta.Workspace) -> dict[str, list[dict]]:
    return {
        name: sample_ws.engine.run(exp.select("*").from_(exp.Table(this=exp.to_identifier(name, quoted=True)))).to_pylist()
        for name in sample_ws.model.tables
    }


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_members_are_the_references(example: Path, sample_ws: segmenta.Workspace, sample_rows: dict) -> None:
    definition = sample_ws.definition(json.loads(example.read_text()))
    got = sample_ws.evaluate(definition, as_of=AS_OF).keys
    want = reference.evaluate(sample_ws.model, sample_rows, definition, as_of=sample_ws.evaluate(definition, as_of=AS_OF).as_of)
    assert got == want, example.stem


def test_most_examples_find_someone_in_the_sample(sample_ws: segmenta.Workspace) -> None:
    """So that the agreement above is not that of empty answers."""
    sizes = {p.stem: sample_ws.evaluate(json.loads(p.read_text()), as_of=AS_OF).count for p in EXAMPLES}
    assert sum(1 for n in sizes.values() if n > 0) >= len(EXAMPLES) * 2 // 3, sizes
