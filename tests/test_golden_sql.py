"""Golden SQL: the compiled query of every conformance case in each main dialect.

A change to the compiler that changes the SQL shows up here as a readable diff.
Regenerate deliberately with ``SEGMENTA_UPDATE_GOLDEN=1 pytest tests/test_golden_sql.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot

from tests.conftest import CONFORMANCE

GOLDEN = Path(__file__).parent / "golden"
DIALECTS = ("duckdb", "spark", "postgres")
AS_OF = "2026-10-27T12:00:00"
CASES = sorted(p.stem for p in (CONFORMANCE / "segments").glob("*.json")) if CONFORMANCE.is_dir() else []


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", CASES)
def test_compiled_sql_matches_golden(name: str, dialect: str, conformance_ws, conformance_dir: Path) -> None:
    sql = conformance_ws.sql(conformance_dir / "segments" / f"{name}.json", dialect=dialect, as_of=AS_OF) + "\n"
    golden = GOLDEN / dialect / f"{name}.sql"
    if os.environ.get("SEGMENTA_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(sql)
    assert golden.is_file(), f"no golden file {golden}; run with SEGMENTA_UPDATE_GOLDEN=1 to create it"
    assert sql == golden.read_text()
    # The text is valid SQL for the dialect (sqlglot parses it back).
    sqlglot.parse_one(sql, dialect=dialect)


def test_values_are_literals_not_sql(conformance_ws) -> None:
    """A value that looks like SQL stays a string literal in every dialect."""
    evil = "x'); DROP TABLE contact; --"
    definition = {"audience": "contact", "groups": [{"where": {"attribute": "jobtitle", "op": "eq", "value": evil}}]}
    for dialect in DIALECTS:
        tree = sqlglot.parse_one(conformance_ws.sql(definition, dialect=dialect, as_of=AS_OF), dialect=dialect)
        literals = [lit.this for lit in tree.find_all(sqlglot.exp.Literal) if lit.is_string]
        assert evil in literals
        assert not list(tree.find_all(sqlglot.exp.Drop))
    assert conformance_ws.evaluate(definition, as_of=AS_OF).keys == []
    assert "contact" in conformance_ws.engine.tables()


def test_unknown_dialect_is_rejected_with_suggestion(conformance_ws) -> None:
    definition = {"audience": "contact", "groups": [{"where": {"all": []}}]}
    with pytest.raises(ValueError, match=r"unknown dialect 'postgress' \(did you mean 'postgres'\?\)"):
        conformance_ws.sql(definition, dialect="postgress")
