"""Staging Arrow data beside the data, on every engine: what a CSV list or many keys at once are matched through."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from sqlglot import exp

from segmenta.errors import EngineError
from segmenta.model.schema import Model
from tests.engines.helpers import WorkspaceFactory

pytest_plugins = ["tests.engines.fixtures"]

MODEL = Model.from_data(
    {"tables": {"person": {"key": "pid", "columns": {"pid": {"type": "integer"}, "email": {"type": "text"}}}}}
)
PEOPLE = pa.table({"pid": pa.array([1, 2, 3], pa.int64()), "email": ["ann@x.example", "bob@x.example", None]})


def test_staged_data_joins_the_data_and_is_dropped(make_ws: WorkspaceFactory) -> None:
    ws = make_ws(model=MODEL)
    ws.engine.replace_table("person", MODEL.table("person"), PEOPLE)
    wanted = pa.table(
        {
            "addr": ["bob@x.example", "nobody@x.example", None],
            "row": pa.array([1, 2, 3], pa.int64()),
            "weight": pa.array([Decimal("1.5"), None, Decimal("0")], pa.decimal128(38, 10)),
            "tags": pa.array([["a", 'b "c"'], [], None], pa.list_(pa.string())),
        }
    )
    staged = ws.engine.stage("__segmenta_wanted", wanted)
    assert ws.engine.run(exp.select("*").from_(staged.copy()).order_by("row")).to_pylist() == wanted.to_pylist()
    matched = (
        exp.select(exp.column("pid", table="p"), exp.column("row", table="w"))
        .from_(exp.alias_(exp.to_table("person"), "p"))
        .join(exp.alias_(staged.copy(), "w"), on=exp.column("email", table="p").eq(exp.column("addr", table="w")))
    )
    assert ws.engine.run(matched).to_pylist() == [{"pid": 2, "row": 1}]

    # staging again replaces, it does not append
    ws.engine.stage("__segmenta_wanted", wanted.slice(0, 1))
    assert ws.engine.run(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(staged.copy())).to_pylist() == [{"n": 1}]

    ws.engine.drop_staged("__segmenta_wanted")
    ws.engine.drop_staged("__segmenta_wanted")  # gone already: no error
    with pytest.raises(EngineError):
        ws.engine.run(exp.select("*").from_(staged))
    untouched = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(exp.to_table("person"))
    assert ws.engine.run(untouched).to_pylist() == [{"n": 3}]  # the data is untouched (a tree: Spark quotes with `)


def test_a_table_whose_first_chunk_is_empty_stages_whole(make_ws: WorkspaceFactory) -> None:
    # the old versions of an insert are an empty chunk before the new ones: PostgreSQL's COPY once got a NUL byte
    ws = make_ws(model=MODEL)
    chunks = pa.concat_tables([PEOPLE.slice(0, 0), PEOPLE])
    assert chunks.column(0).num_chunks == 2
    staged = ws.engine.stage("__segmenta_chunks", chunks)
    got = ws.engine.run(exp.select("*").from_(staged.copy()).order_by("pid")).to_pylist()
    assert got == PEOPLE.to_pylist()
    ws.engine.drop_staged("__segmenta_chunks")
