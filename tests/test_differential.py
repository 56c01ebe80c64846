"""Differential tests: the compiled SQL on every engine and the plain-Python reference agree on every record.

Hypothesis draws a small random model (1-3 tables linked by relationships, columns of every
type, an active rule, measures), random data over tiny domains (so that case, wildcards,
empties, window edges to the second and dangling keys all come up) and random valid
definitions (nested trees, paths, related counts, aggregates, measures, segments, groups),
then evaluates each definition both ways.

A second property sweeps every operator of every type one condition at a time over random
data, so that an operator's bug is found even when random definitions rarely reach it.

Both run on DuckDB, PostgreSQL and Spark (the engine fixture), with fewer examples on the slower
engines. ``SEGMENTA_DIFFERENTIAL_EXAMPLES`` and ``SEGMENTA_SWEEP_EXAMPLES`` set how many examples
each property tries on DuckDB (defaults 200 and 25), ``SEGMENTA_POSTGRES_DIFFERENTIAL_EXAMPLES`` /
``SEGMENTA_POSTGRES_SWEEP_EXAMPLES`` (40, 10) and ``SEGMENTA_SPARK_DIFFERENTIAL_EXAMPLES`` /
``SEGMENTA_SPARK_SWEEP_EXAMPLES`` (8, 1) on the others; raise them to hunt for bugs.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from segmenta import Workspace
from segmenta.engines.base import Engine
from segmenta.engines.duckdb import DuckDBEngine
from segmenta.errors import DefinitionError
from segmenta.model.operators import COUNT_OPERATORS, LIST_VALUE, NO_VALUE, OPERATORS, RANGE_VALUE, WINDOW_VALUE
from segmenta.model.schema import ColumnType, Model, aggregate_type_problem
from segmenta.model.validate import parse_definition
from segmenta.services.loading import arrow_schema
from tests import reference

EXAMPLES = int(os.environ.get("SEGMENTA_DIFFERENTIAL_EXAMPLES", "200"))
T = ColumnType
TYPES = ["text", *(t.value for t in ColumnType)]  # text twice: it has the most operators
#: Text over the characters that mean something to LIKE or to SQL string literals in some dialect:
#: wildcards (% _), segmenta's escape (!), PostgreSQL's and Spark's default escape (backslash), the quote.
ALPHABET = "aA%_! b\\'"
DATA_TEXT = [
    "a",
    "",
    "A",
    "ab",
    "AB",
    "a%b",
    "a_b",
    "%",
    "_",
    "!",
    "a!b",
    "b a",
    "\\",
    "A\\b",
    "ba",
    "x",
    "'",
    "a'b",
    "\\%",
    "a\\_",
]
CONDITION_TEXT = ["a", "A", "b", "%", "_", "!", "a%", "_b", "", "ab", "AB", "b a", "\\", "!b", "'", "\\%", "\\_", "a\\"]
CHOICES = ["x", "Y", "z", "x y"]
DECIMALS = ["-1.5", "0", "0.1", "0.2", "0.3", "0.25", "1", "2.5", "100"]
AS_OFS = [
    dt.datetime(2024, 3, 31, 12),
    dt.datetime(2024, 2, 29),
    dt.datetime(2023, 12, 31, 23, 59, 59),
    dt.datetime(2024, 1, 31, 6, 30),
]
WINDOW_UNITS = ["hours", "days", "weeks", "months", "years"]
WINDOW_NS = [0, 1, 2, 7, 30]
SEGMENT_NAMES = ["s1", "s2"]
SWEEP_SHARE = 45  # conditions checked per example of the operator sweep (of about 120)
MAX_KEY = 8
DANGLING = MAX_KEY + 1


# -- models -------------------------------------------------------------------------------------


@st.composite
def models(draw: st.DrawFn) -> Model:
    n = draw(st.sampled_from([1, 2, 2, 3, 3, 3]))
    tables: dict[str, dict[str, Any]] = {}
    for i in range(n):
        columns: dict[str, Any] = {"id": {"type": "integer"}}
        for j, t in enumerate(draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=4))):
            col: dict[str, Any] = {"type": t}
            if t in ("choice", "choices"):
                col["choices"] = draw(st.lists(st.sampled_from(CHOICES), min_size=1, max_size=4, unique=True))
            columns[f"{t}{j}"] = col
        if draw(st.booleans()):
            columns["calc"] = {"type": "text", "calculated": True}
        tables[f"t{i}"] = {"key": "id", "columns": columns}
    relationships = []
    links = [(i, draw(st.integers(0, i - 1))) for i in range(1, n)]
    if n > 1 and draw(st.booleans()):  # a second relationship between two tables
        links.append((draw(st.integers(1, n - 1)), 0))
    for k, (a, b) in enumerate(links):
        child, parent = (a, b) if draw(st.booleans()) else (b, a)
        tables[f"t{child}"]["columns"][f"fk{k}"] = {"type": "integer"}
        relationships.append({"name": f"up{k}", "from": f"t{child}.fk{k}", "to": f"t{parent}.id", "reverse": f"down{k}"})
    if draw(st.booleans()):  # a table that refers to itself, like contact -> parent contact
        tables["t0"]["columns"]["parent"] = {"type": "integer"}
        relationships.append({"name": "parent", "from": "t0.parent", "to": "t0.id", "reverse": "children"})
    active = draw(st.sampled_from([None, "boolean", "integer"]))
    if active == "boolean":
        tables["t0"]["columns"]["on"] = {"type": "boolean"}
        tables["t0"]["active"] = {"attribute": "on", "equals": True}
    elif active == "integer":
        tables["t0"]["columns"]["state"] = {"type": "integer"}
        tables["t0"]["active"] = {"attribute": "state", "equals": 0}
    raw = {"tables": tables, "relationships": relationships}
    model = Model.from_data(raw)
    measures = {}
    for k, rel in enumerate(model.relationships):
        if draw(st.booleans()):
            continue
        child = model.table(rel.from_table)
        fns = [
            (fn, c)
            for c, col in _usable(child)
            for fn in ("sum", "avg", "min", "max", "count_distinct")
            if aggregate_type_problem(fn, col.type) is None
        ]
        if not fns:
            continue
        fn, attribute = draw(st.sampled_from(fns))
        measure: dict[str, Any] = {"table": rel.to_table, "related": rel.reverse, "aggregate": {"fn": fn, "attribute": attribute}}
        if draw(st.booleans()):
            measure["where"] = draw(conditions(model, rel.from_table, 0))
        measures[f"m{k}"] = measure
    return Model.from_data({**raw, "measures": measures}) if measures else model


def _usable(table: Any) -> list[tuple[str, Any]]:
    """Columns a condition may use, the key last (hypothesis starts from the first)."""
    return sorted(((c, col) for c, col in table.columns.items() if not col.calculated), key=lambda item: item[0] == table.key)


# -- data -------------------------------------------------------------------------------------------


@functools.cache
def datetime_points(as_of: dt.datetime) -> list[dt.datetime]:
    """Instants on and one second beside every window edge the definitions can use."""
    points = {as_of}
    for unit in WINDOW_UNITS:
        for n in WINDOW_NS:
            for sign in (-1, 1):
                edge = reference.move(as_of, unit, sign * n)
                points.update({edge, edge - dt.timedelta(seconds=1), edge + dt.timedelta(seconds=1)})
    return sorted(points, key=lambda p: abs(p - as_of))  # nearest first: hypothesis favours the first


@functools.cache
def date_points(as_of: dt.datetime) -> list[dt.date]:
    midnight = dt.datetime(as_of.year, as_of.month, as_of.day)
    days = {p.date() for p in datetime_points(as_of)} | {p.date() for p in datetime_points(midnight)}
    return sorted(days | {d - dt.timedelta(days=1) for d in days}, key=lambda d: abs(d - as_of.date()))


@functools.cache
def values(ctype: ColumnType, choices: tuple[str, ...] | None, as_of: dt.datetime) -> st.SearchStrategy[Any]:
    """Stored values of a column: tiny domains, with nulls and the type's other empties."""
    some: st.SearchStrategy[Any] = {
        T.TEXT: st.one_of(st.sampled_from(DATA_TEXT), st.text(alphabet=ALPHABET, max_size=4)),
        T.INTEGER: st.integers(-3, 3),
        T.DECIMAL: st.sampled_from(DECIMALS).map(Decimal),
        T.BOOLEAN: st.booleans(),
        T.DATE: st.sampled_from(date_points(as_of)),
        T.DATETIME: st.sampled_from(datetime_points(as_of)),
        T.CHOICE: st.sampled_from(choices or ("?",)),
        T.CHOICES: st.lists(st.sampled_from(choices or ("?",)), unique=True, max_size=3),
    }[ctype]
    return st.one_of(some, st.none())


@st.composite
def datasets(draw: st.DrawFn, model: Model, as_of: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    targets = {rel.to_table for rel in model.relationships}
    keys = {}
    for name in model.tables:  # a table no key refers to may hold more rows (keys past DANGLING are fine there)
        space = MAX_KEY if name in targets else 3 * MAX_KEY
        keys[name] = draw(
            st.lists(st.integers(1, space), unique=True, min_size=4 if name == "t0" else 2, max_size=space // 2 + 2)
        )
    fks = {rel.from_column: rel.to_table for rel in model.relationships}
    data: dict[str, list[dict[str, Any]]] = {}
    for name, table in model.tables.items():
        rows = []
        for key in keys[name]:
            row: dict[str, Any] = {}
            for c, col in table.columns.items():
                if c == table.key:
                    row[c] = key
                elif c in fks and any(r.from_table == name and r.from_column == c for r in model.relationships):
                    row[c] = draw(st.sampled_from([None, DANGLING, *keys[fks[c]], *keys[fks[c]], *keys[fks[c]]]))
                elif table.active is not None and c == table.active.attribute:  # mostly active
                    on = table.active.equals
                    row[c] = draw(st.sampled_from([on, on, None, (not on) if isinstance(on, bool) else on + 1]))
                else:
                    row[c] = draw(values(col.type, col.choices, as_of))
            rows.append(row)
        data[name] = rows
    return data


# -- definitions ------------------------------------------------------------------------------------


@functools.cache
def scalars(ctype: ColumnType, choices: tuple[str, ...] | None, as_of: dt.datetime) -> st.SearchStrategy[Any]:
    """Condition values as JSON would carry them."""
    if ctype is T.TEXT:
        return st.one_of(st.sampled_from(CONDITION_TEXT), st.text(alphabet=ALPHABET, max_size=2))
    if ctype is T.INTEGER:
        return st.sampled_from([1, 2, 0, 3, -1, 5, 9, -3])
    if ctype is T.DECIMAL:
        return st.sampled_from([*DECIMALS, "0.15", "0.2", "1.25", "50.05"]).map(float)
    if ctype in (T.DATE, T.DATETIME):
        day = st.sampled_from(date_points(as_of)).map(lambda d: d.isoformat())
        moment = st.sampled_from(datetime_points(as_of)).map(lambda m: m.isoformat())
        return st.one_of(day, moment) if ctype is T.DATETIME else day
    return st.sampled_from(choices or ("?",))


def _iso_day(v: str) -> str:
    return v[:10]


@st.composite
def values_for(draw: st.DrawFn, op: str, ctype: ColumnType, choices: tuple[str, ...] | None, as_of: dt.datetime) -> Any:
    if op in NO_VALUE:
        return None
    if op in WINDOW_VALUE:
        return {draw(st.sampled_from(WINDOW_UNITS)): draw(st.sampled_from(WINDOW_NS))}
    one = scalars(ctype, choices, as_of)
    if op in RANGE_VALUE:
        pair = draw(st.lists(one, min_size=2, max_size=2))
        key = _iso_day if ctype.is_temporal else (lambda v: v)
        return sorted(pair, key=key)
    if op in LIST_VALUE:
        return draw(st.lists(one, min_size=1, max_size=3))
    return draw(one)


@st.composite
def conditions(draw: st.DrawFn, model: Model, table: str, depth: int, *, leaf: bool = False) -> dict[str, Any]:
    """A condition on ``table``; ``leaf``: not a tree (so that a path can lead to it)."""
    m2o, o2m = model.link_names(table)
    kinds = ["attribute", "attribute", "attribute", "in_segment"]
    if m2o:
        kinds += ["path", "path"]
    if o2m and depth > 0:
        kinds += ["related", "related", "aggregate", "aggregate"]
    if model.measures_of(table):
        kinds += ["measure", "measure"]
    if depth > 0 and not leaf:
        kinds += ["all", "any"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("all", "any"):
        return {kind: draw(st.lists(conditions(model, table, depth - 1), max_size=3))}
    if kind == "path":
        step = draw(st.sampled_from(m2o))
        target = model.many_to_one(table, step)
        assert target is not None
        inner = draw(conditions(model, target.to_table, max(depth - 1, 0), leaf=True))
        return {**inner, "path": [step, *inner.get("path", [])]}
    if kind == "in_segment":
        return {"in_segment": draw(st.sampled_from(SEGMENT_NAMES))}
    if kind == "attribute":
        return draw(attribute_conditions(model, table))
    if kind == "measure":
        name = draw(st.sampled_from(sorted(model.measures_of(table))))
        m = model.measures[name]
        rel = model.one_to_many(table, m.related)
        assert rel is not None
        col = model.table(rel.from_table).column(m.aggregate.attribute)
        return {"measure": name, **draw(compare(m.aggregate.fn, col.type, col.choices))}
    related = draw(st.sampled_from(o2m))
    rel = model.one_to_many(table, related)
    assert rel is not None
    out: dict[str, Any] = {"related": related}
    if draw(st.booleans()):
        out["where"] = draw(conditions(model, rel.from_table, depth - 1))
    if kind == "aggregate":
        fn = draw(st.sampled_from(["count_distinct", "sum", "avg", "min", "max"]))
        usable = [(c, col) for c, col in _usable(model.table(rel.from_table)) if aggregate_type_problem(fn, col.type) is None]
        if usable:
            c, col = draw(st.sampled_from(usable))
            return {**out, "aggregate": {"fn": fn, "attribute": c}, **draw(compare(fn, col.type, col.choices))}
    if draw(st.booleans()):
        op = draw(st.sampled_from(COUNT_OPERATORS))
        value: Any = (
            sorted(draw(st.lists(st.integers(0, 3), min_size=2, max_size=2))) if op == "between" else draw(st.integers(0, 3))
        )
        out["count"] = {"op": op, "value": value}
    return out


@st.composite
def compare(draw: st.DrawFn, fn: str, ctype: ColumnType, choices: tuple[str, ...] | None) -> dict[str, Any]:
    """``op`` and ``value`` for an aggregate of ``fn`` over a column of ``ctype``."""
    result = {"count_distinct": T.INTEGER, "avg": T.DECIMAL}.get(fn, ctype)
    as_of = AS_OFS[0]
    op = draw(st.sampled_from(OPERATORS[result]))
    value = draw(values_for(op, result, choices, as_of))
    return {"op": op} if value is None else {"op": op, "value": value}


@st.composite
def attribute_conditions(draw: st.DrawFn, model: Model, table: str) -> dict[str, Any]:
    c, col = draw(st.sampled_from(_usable(model.table(table))))
    op = draw(st.sampled_from(OPERATORS[col.type]))
    out: dict[str, Any] = {"attribute": c, "op": op}
    value = draw(values_for(op, col.type, col.choices, AS_OFS[0]))
    if value is not None:
        out["value"] = value
    if col.type is T.TEXT and draw(st.booleans()):
        out["case_sensitive"] = draw(st.booleans())
    return out


@st.composite
def definitions(draw: st.DrawFn, model: Model) -> dict[str, Any]:
    """Half the time one condition alone (each operator is seen clearly), else up to three groups of trees."""
    if draw(st.booleans()):
        return {"audience": "t0", "groups": [{"where": draw(conditions(model, "t0", 1, leaf=True))}]}
    groups = [{"where": draw(conditions(model, "t0", 2))}]
    for _ in range(draw(st.integers(0, 2))):
        groups.append({"link": draw(st.sampled_from(["and_also", "or", "but_not"])), "where": draw(conditions(model, "t0", 2))})
    return {"audience": "t0", "groups": groups}


#: Examples per engine: each query is a round trip to the server on PostgreSQL and a Spark job on
#: Spark, so those try fewer (the environment variables raise them to hunt for bugs).
EXAMPLES_ON = {
    "duckdb": EXAMPLES,
    "postgres": int(os.environ.get("SEGMENTA_POSTGRES_DIFFERENTIAL_EXAMPLES", "40")),
    "spark": int(os.environ.get("SEGMENTA_SPARK_DIFFERENTIAL_EXAMPLES", "8")),
}
SWEEP_EXAMPLES_ON = {
    "duckdb": int(os.environ.get("SEGMENTA_SWEEP_EXAMPLES", "25")),
    "postgres": int(os.environ.get("SEGMENTA_POSTGRES_SWEEP_EXAMPLES", "10")),
    "spark": int(os.environ.get("SEGMENTA_SPARK_SWEEP_EXAMPLES", "1")),
}
#: Definitions checked per example (over one load of the example's tables).
DEFINITIONS_ON = {"duckdb": (3, 10), "postgres": (2, 6), "spark": (1, 3)}


@pytest.fixture(scope="module")
def engine(engine_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """One engine of the kind under test for the whole module (each example replaces its tables)."""
    shared: Engine
    if engine_name == "postgres":
        from segmenta.engines.postgres import PostgresEngine, PostgresSettings

        schema = f"segmenta_diff_{uuid.uuid4().hex[:8]}"
        url = request.getfixturevalue("pg_url")
        shared = PostgresEngine(PostgresSettings.from_config({"url": url, "schema": schema}, workspace=Path(".")))
    elif engine_name == "spark":
        from segmenta.engines.spark import SparkEngine, SparkSettings

        request.getfixturevalue("spark_session")
        shared = SparkEngine(
            str(tmp_path_factory.mktemp("differential-spark")),
            SparkSettings.from_config({"master": os.environ.get("SEGMENTA_SPARK_MASTER", "local[2]")}),
        )
    else:
        shared = DuckDBEngine()
    yield shared
    if engine_name == "postgres":
        shared.drop_schemas()  # type: ignore[attr-defined]
    shared.close()


# -- the property ---------------------------------------------------------------------------------------


def segment_source(model: Model, segments: dict[str, set[int]]) -> Any:
    def source(name: str, table: str) -> exp.Query:
        key = model.table(table).key
        keys = sorted(segments[name])
        where = (
            exp.In(this=exp.column(key, quoted=True), expressions=[exp.Literal.number(k) for k in keys]) if keys else exp.false()
        )
        return exp.select(exp.column(key, quoted=True)).from_(exp.to_table(table)).where(where)

    return source


def workspace(engine: Engine, model: Model, data: dict[str, list[dict[str, Any]]], segments: dict[str, set[int]]) -> Workspace:
    """A workspace over the shared in-memory ``engine`` holding ``data`` (each example replaces its tables)."""
    ws = Workspace(Path("in-memory"), model, engine, {})
    for name, table in model.tables.items():
        ws.engine.replace_table(name, table, pa.Table.from_pylist(data[name], schema=arrow_schema(table)))
    ws.segment_source = segment_source(model, segments)
    return ws


def check_agree(
    ws: Workspace,
    model: Model,
    data: dict[str, list[dict[str, Any]]],
    raw: dict[str, Any],
    as_of: dt.datetime,
    segments: dict[str, set[int]],
) -> None:
    try:
        definition = parse_definition(raw, model)
    except DefinitionError as exc:  # the generator only writes valid definitions
        raise AssertionError(f"rejected: {exc}\n{json.dumps(raw, indent=1)}") from None
    by_sql = ws.evaluate(definition, as_of=as_of).keys
    by_reference = reference.evaluate(model, data, definition, as_of=as_of, segments=segments)
    assert by_sql == by_reference, (
        f"{ws.engine.dialect} {by_sql} != reference {by_reference}\nas_of {as_of}\ndefinition {json.dumps(raw)}\n"
        f"model {json.dumps(model.to_data())}\ndata {data}\nsql {ws.sql(definition, as_of=as_of)}"
    )


#: The sweep filters its few related conditions out of all conditions; the engines are slower than the draws.
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much]
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]


def test_compiled_sql_agrees_with_the_reference(engine: Engine, engine_name: str) -> None:
    fewest, most = DEFINITIONS_ON[engine_name]

    @settings(max_examples=EXAMPLES_ON[engine_name], deadline=None, phases=PHASES, suppress_health_check=SLOW)
    @given(st.data())
    def agree(data: st.DataObject) -> None:
        model = data.draw(models(), label="model")
        as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
        rows = data.draw(datasets(model, as_of), label="data")
        segments = {name: set(data.draw(st.lists(st.integers(1, DANGLING), max_size=5), label=name)) for name in SEGMENT_NAMES}
        ws = workspace(engine, model, rows, segments)
        for i in range(data.draw(st.integers(fewest, most), label="how many definitions")):
            raw = data.draw(definitions(model), label=f"definition {i}")
            check_agree(ws, model, rows, raw, as_of, segments)

    agree()


# -- every operator, one at a time ------------------------------------------------------------------

SWEEP_MODEL = Model.from_data(
    {
        "tables": {
            "t0": {
                "key": "id",
                "columns": {
                    "id": {"type": "integer"},
                    "text0": {"type": "text"},
                    "integer0": {"type": "integer"},
                    "decimal0": {"type": "decimal"},
                    "boolean0": {"type": "boolean"},
                    "date0": {"type": "date"},
                    "datetime0": {"type": "datetime"},
                    "choice0": {"type": "choice", "choices": CHOICES},
                    "choices0": {"type": "choices", "choices": CHOICES},
                    "fk": {"type": "integer"},
                },
            },
            "p": {
                "key": "id",
                "columns": {"id": {"type": "integer"}, "text0": {"type": "text"}, "decimal0": {"type": "decimal"}},
            },
            "c": {
                "key": "id",
                "columns": {
                    "id": {"type": "integer"},
                    "owner": {"type": "integer"},
                    "text0": {"type": "text"},
                    "integer0": {"type": "integer"},
                    "decimal0": {"type": "decimal"},
                    "date0": {"type": "date"},
                    "datetime0": {"type": "datetime"},
                    "choice0": {"type": "choice", "choices": CHOICES},
                    "boolean0": {"type": "boolean"},
                },
            },
        },
        "relationships": [
            {"name": "up", "from": "t0.fk", "to": "p.id", "reverse": "down"},
            {"name": "owner", "from": "c.owner", "to": "t0.id", "reverse": "items"},
        ],
        "measures": {
            "spend": {"table": "t0", "related": "items", "aggregate": {"fn": "sum", "attribute": "decimal0"}},
            "kinds": {
                "table": "t0",
                "related": "items",
                "aggregate": {"fn": "count_distinct", "attribute": "text0"},
                "where": {"attribute": "decimal0", "op": "gt", "value": 0},
            },
        },
    }
)


@st.composite
def sweep(draw: st.DrawFn, as_of: dt.datetime) -> list[dict[str, Any]]:
    """One condition per operator of every t0 column, per aggregate of every c column, and a few more."""
    conds: list[dict[str, Any]] = []
    for table, prefix in (("t0", {}), ("p", {"path": ["up"]})):
        for c, col in _usable(SWEEP_MODEL.table(table)):
            for op in OPERATORS[col.type]:
                cond: dict[str, Any] = {**prefix, "attribute": c, "op": op}
                value = draw(values_for(op, col.type, col.choices, as_of))
                if value is not None:
                    cond["value"] = value
                if col.type is T.TEXT and op not in ("is_empty", "is_not_empty"):
                    cond["case_sensitive"] = draw(st.booleans())
                conds.append(cond)
    for c, col in _usable(SWEEP_MODEL.table("c")):
        for fn in ("sum", "avg", "min", "max", "count_distinct"):
            if aggregate_type_problem(fn, col.type) is None:
                cond = {"related": "items", "aggregate": {"fn": fn, "attribute": c}, **draw(compare(fn, col.type, col.choices))}
                if draw(st.booleans()):
                    cond["where"] = draw(attribute_conditions(SWEEP_MODEL, "c"))
                conds.append(cond)
    for name in ("spend", "kinds"):
        conds.append({"measure": name, **draw(compare("sum", T.INTEGER, None))})
    for _ in range(4):
        conds.append(draw(conditions(SWEEP_MODEL, "t0", 1, leaf=True).filter(lambda c: "related" in c)))
    # A different share of them per example keeps each example quick; over the run every one is checked many times.
    return draw(st.randoms(use_true_random=False)).sample(conds, SWEEP_SHARE)


def test_every_operator_agrees_with_the_reference(engine: Engine, engine_name: str) -> None:
    @settings(max_examples=SWEEP_EXAMPLES_ON[engine_name], deadline=None, phases=PHASES, suppress_health_check=SLOW)
    @given(st.data())
    def agree(data: st.DataObject) -> None:
        as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
        rows = data.draw(datasets(SWEEP_MODEL, as_of), label="data")
        segments: dict[str, set[int]] = {name: set() for name in SEGMENT_NAMES}
        ws = workspace(engine, SWEEP_MODEL, rows, segments)
        for cond in data.draw(sweep(as_of), label="conditions"):
            check_agree(ws, SWEEP_MODEL, rows, {"audience": "t0", "groups": [{"where": cond}]}, as_of, segments)

    agree()


# -- the reference itself, on the public conformance set -------------------------------------------------


def test_reference_agrees_with_the_conformance_set(
    conformance_ws: Workspace, conformance_expected: dict, conformance_dir: Path
) -> None:
    model = conformance_ws.model
    data = {
        name: conformance_ws.engine.run(exp.select("*").from_(exp.to_table(name, quoted=True))).to_pylist()
        for name in model.tables
    }
    as_of = dt.datetime.fromisoformat(conformance_expected["as_of"])
    for name, want in conformance_expected["members"].items():
        definition = conformance_ws.definition(conformance_dir / "segments" / f"{name}.json")
        assert reference.evaluate(model, data, definition, as_of=as_of) == want, name


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (dt.datetime(2024, 3, 31, 12), -1, dt.datetime(2024, 2, 29, 12)),
        (dt.datetime(2023, 3, 31), -1, dt.datetime(2023, 2, 28)),
        (dt.datetime(2024, 1, 31), 1, dt.datetime(2024, 2, 29)),
        (dt.datetime(2024, 12, 31), 2, dt.datetime(2025, 2, 28)),
        (dt.datetime(2024, 2, 29), -12, dt.datetime(2023, 2, 28)),
        (dt.datetime(2024, 5, 15), -17, dt.datetime(2022, 12, 15)),
    ],
)
def test_reference_months_clamp_to_month_end(moment: dt.datetime, months: int, expected: dt.datetime) -> None:
    assert reference.add_months(moment, months) == expected
