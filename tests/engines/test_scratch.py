"""Scratch tables in the data engine (``Engine.materialise``), on every engine: how a CSV list's
matches are kept where the data is, read twice (counts, then the list's new members) and dropped."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlglot import exp

from segmenta.engines import ENGINES, engine_class, local_engine
from segmenta.engines.sqltypes import SQL_TYPES, sql_type
from segmenta.errors import EngineError
from segmenta.model.schema import ColumnType, Model
from tests.engines.helpers import WorkspaceFactory

pytest_plugins = ["tests.engines.fixtures"]

MODEL = Model.from_data(
    {"tables": {"person": {"key": "pid", "columns": {"pid": {"type": "integer"}, "email": {"type": "text"}}}}}
)
PEOPLE = pa.table({"pid": pa.array([1, 2, 3], pa.int64()), "email": ["ann@x.example", "bob@x.example", "ann@x.example"]})


def test_a_materialised_query_is_read_again_and_dropped(make_ws: WorkspaceFactory) -> None:
    ws = make_ws(model=MODEL)
    ws.engine.replace_table("person", MODEL.table("person"), PEOPLE)
    wanted = ws.engine.stage("segmenta_test_wanted", pa.table({"addr": ["ann@x.example", "nobody@x.example"]}))
    query = (
        exp.select(exp.column("pid"), exp.column("email").as_("addr"))
        .from_("person")
        .where(exp.In(this=exp.column("email"), query=exp.select("addr").from_(wanted.copy()).subquery()))
    )
    kept = ws.engine.materialise("segmenta_test_matches", query)
    ws.engine.drop_staged("segmenta_test_wanted")  # the scratch table holds its own rows, not a view of the staged data
    rows = exp.select("pid", "addr").from_(kept.copy()).order_by("pid")
    assert ws.engine.run(rows).to_pylist() == [{"pid": 1, "addr": "ann@x.example"}, {"pid": 3, "addr": "ann@x.example"}]
    assert ws.engine.run(rows).num_rows == 2  # read again: the query ran once, its rows stay

    again = exp.select(exp.column("pid"), exp.column("email").as_("addr")).from_("person").where(exp.column("pid").eq(3))
    ws.engine.materialise("segmenta_test_matches", again)  # replaces
    assert ws.engine.run(exp.select("pid").from_(kept.copy())).column(0).to_pylist() == [3]

    ws.engine.drop_staged("segmenta_test_matches")
    ws.engine.drop_staged("segmenta_test_matches")  # gone already: no error
    with pytest.raises(EngineError):
        ws.engine.run(exp.select("*").from_(kept))
    assert "segmenta_test_matches" not in ws.engine.tables()
    assert ws.engine.run(exp.select(exp.Count(this=exp.Star()).as_("n")).from_("person")).to_pylist() == [{"n": 3}]


def test_the_registry_opens_each_engine_by_name_only_when_chosen() -> None:
    assert list(ENGINES) == ["duckdb", "spark", "postgres"]
    for name in ENGINES:
        assert engine_class(name).dialect == name
    local = local_engine()
    try:
        assert local.run(exp.select(exp.Literal.number(1).as_("one"))).to_pylist() == [{"one": 1}]
        assert local.statement_timeout_s is None  # the user's own file: no time limit
    finally:
        local.close()


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_one_type_map_each_engine_spells_its_own(dialect: str) -> None:
    assert set(SQL_TYPES) == set(ColumnType)
    spelled = {t: sql_type(t).sql(dialect=dialect) for t in ColumnType}
    assert spelled[ColumnType.INTEGER] == "BIGINT"
    assert spelled[ColumnType.DECIMAL] == "DECIMAL(38, 10)"
    assert spelled[ColumnType.TEXT] == {"duckdb": "TEXT", "postgres": "TEXT", "spark": "STRING"}[dialect]
    assert spelled[ColumnType.CHOICES] == {"duckdb": "TEXT[]", "postgres": "TEXT[]", "spark": "ARRAY<STRING>"}[dialect]
