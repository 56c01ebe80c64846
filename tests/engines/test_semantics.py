"""The places where the engines' SQL differs by default give the contract's meaning on every engine.

The edge cases below pin case folding, LIKE escapes, SIZE of a null array, time zones,
decimals and empty aggregates on DuckDB, PostgreSQL and Spark (the engine fixture, one
workspace per engine, every case in one test so Spark runs it whole); the conformance set
itself runs on every engine in tests/test_conformance.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

import segmenta
from segmenta.model.schema import Model
from segmenta.services.loading import arrow_schema

# -- edge semantics -----------------------------------------------------------------------------

EDGE_MODEL = {
    "tables": {
        "person": {
            "key": "id",
            "columns": {
                "id": {"type": "integer"},
                "name": {"type": "text"},
                "tags": {"type": "choices", "choices": ["a", "b", "c"]},
                "seen": {"type": "datetime"},
                "born": {"type": "date"},
                "score": {"type": "decimal"},
                "ok": {"type": "boolean"},
            },
        },
        "purchase": {
            "key": "pid",
            "columns": {
                "pid": {"type": "integer"},
                "id": {"type": "integer"},
                "amount": {"type": "decimal"},
                "ts": {"type": "datetime"},
                "kind": {"type": "text"},
            },
        },
    },
    "relationships": [{"name": "person", "from": "purchase.id", "to": "person.id", "reverse": "purchases"}],
}

T = dt.datetime
D = dt.date
PEOPLE = [
    (1, "ΟΔΟΣ ΚΑΙ", ["a"], T(2026, 10, 26, 23, 30), D(2000, 2, 29), "0.1", True),
    (2, "İstanbul", [], T(2026, 10, 27), D(1999, 12, 31), "0.2", False),
    (3, "a\\b", ["b"], T(2026, 10, 27, 12), None, None, None),
    (4, "100%_off!", ["a", "b"], T(2026, 10, 27, 12, 0, 1), D(2026, 10, 27), "1", True),
    (5, "", None, None, None, "0.3", None),
    (6, None, ["c"], T(2025, 10, 27, 12), D(2025, 10, 27), "-1.5", False),
    (7, "it's", ["b", "c"], T(2026, 9, 27, 12), None, "2.5", True),
    (8, "Straße", [], T(2026, 10, 27, 11, 59, 59), None, "100", None),
]
PURCHASES = [
    (1, 1, "0.1", T(2026, 10, 1), "web"),
    (2, 1, "0.2", T(2026, 10, 2), "WEB"),
    (3, 3, None, T(2026, 10, 3), "store"),
    (4, 4, "5", T(2025, 1, 1), "web"),
    (5, 99, "10", T(2026, 10, 1), "web"),  # points nowhere
    (6, None, "7", T(2026, 10, 1), "web"),  # points at no one
    (7, 7, "1.5", T(2026, 10, 20), None),
]
AS_OF = "2026-10-27T12:00:00"


def _agg(fn: str, attribute: str, op: str, value: Any) -> dict[str, Any]:
    return {"related": "purchases", "aggregate": {"fn": fn, "attribute": attribute}, "op": op, "value": value}


EDGE_CASES: dict[str, tuple[dict[str, Any], list[int]]] = {
    # Case is folded one code point at a time: no final sigma, no two-code-point dotted i.
    "fold_capital_sigma_mid_text": ({"attribute": "name", "op": "contains", "value": "δοσ"}, [1]),
    "fold_capital_sigma_in_value": ({"attribute": "name", "op": "contains", "value": "ΔΟΣ"}, [1]),
    "fold_dotted_capital_i": ({"attribute": "name", "op": "starts_with", "value": "istanbul"}, [2]),
    "fold_dotted_capital_i_in_value": ({"attribute": "name", "op": "eq", "value": "İSTANBUL"}, [2]),
    # A backslash is an ordinary character (Spark's LIKE escapes with it by default).
    "backslash_contains": ({"attribute": "name", "op": "contains", "value": "a\\b"}, [3]),
    "backslash_ends_with": ({"attribute": "name", "op": "ends_with", "value": "\\B"}, [3]),
    "wildcards_are_literal": ({"attribute": "name", "op": "contains", "value": "%_"}, [4]),
    "escape_char_is_literal": ({"attribute": "name", "op": "contains", "value": "!"}, [4]),
    "quote_in_value": ({"attribute": "name", "op": "eq", "value": "IT'S"}, [7]),
    "ne_skips_empty_and_null": ({"attribute": "name", "op": "ne", "value": "x"}, [1, 2, 3, 4, 7, 8]),
    "text_is_empty": ({"attribute": "name", "op": "is_empty"}, [5, 6]),
    # A null set and an empty set are both empty.
    "set_is_empty": ({"attribute": "tags", "op": "is_empty"}, [2, 5, 8]),
    "set_is_not_empty": ({"attribute": "tags", "op": "is_not_empty"}, [1, 3, 4, 6, 7]),
    "set_not_contains_any": ({"attribute": "tags", "op": "not_contains_any", "value": ["a"]}, [3, 6, 7]),
    "set_contains_all": ({"attribute": "tags", "op": "contains_all", "value": ["a", "b"]}, [4]),
    # Datetimes are naive UTC whatever the machine's zone; windows inclusive to the second.
    "datetime_on_utc_date": ({"attribute": "seen", "op": "on", "value": "2026-10-26"}, [1]),
    "in_last_12_hours": ({"attribute": "seen", "op": "in_last", "value": {"hours": 12}}, [2, 3, 8]),
    "not_in_last_30_days": ({"attribute": "seen", "op": "not_in_last", "value": {"days": 30}}, [4, 6]),
    "date_in_last_12_months": ({"attribute": "born", "op": "in_last", "value": {"months": 12}}, [4, 6]),
    "decimal_between": ({"attribute": "score", "op": "between", "value": [0.1, 0.3]}, [1, 2, 5]),
    "boolean_false_skips_null": ({"attribute": "ok", "op": "is_false"}, [2, 6]),
    # Decimals add exactly; an empty sum is 0, an empty average is null (false).
    "sum_is_exact": (_agg("sum", "amount", "eq", 0.3), [1]),
    "empty_sum_is_zero": (_agg("sum", "amount", "lt", 1), [1, 2, 3, 5, 6, 8]),
    "empty_avg_is_false": (_agg("avg", "amount", "lt", 1), [1]),
    "count_distinct_ignores_case_on_text": (_agg("count_distinct", "kind", "eq", 1), [1, 3, 4]),
    "max_datetime": (_agg("max", "ts", "before", "2026-01-01"), [4]),
    "does_not_contain_data": ({"related": "purchases", "count": {"op": "eq", "value": 0}}, [2, 5, 6, 8]),
    "related_text_ignores_case": (
        {"related": "purchases", "where": {"attribute": "kind", "op": "eq", "value": "web"}, "count": {"op": "gte", "value": 2}},
        [1],
    ),
}


@pytest.fixture
def edge_ws(make_ws: Any) -> segmenta.Workspace:
    model = Model.from_data(EDGE_MODEL)
    ws = make_ws(model=model)
    people = [dict(zip(["id", "name", "tags", "seen", "born", "score", "ok"], row, strict=True)) for row in PEOPLE]
    purchases = [dict(zip(["pid", "id", "amount", "ts", "kind"], row, strict=True)) for row in PURCHASES]
    for rows in (people, purchases):
        for row in rows:
            for k in ("score", "amount"):
                if row.get(k) is not None:
                    row[k] = Decimal(row[k])
    ws.engine.replace_table(
        "person", model.table("person"), pa.Table.from_pylist(people, schema=arrow_schema(model.table("person")))
    )
    ws.engine.replace_table(
        "purchase", model.table("purchase"), pa.Table.from_pylist(purchases, schema=arrow_schema(model.table("purchase")))
    )
    return ws


def test_edge_semantics(edge_ws: segmenta.Workspace) -> None:
    """Every edge case on one workspace (one table load per engine); all mismatches reported together."""
    wrong = {}
    for name, (where, expected) in EDGE_CASES.items():
        got = edge_ws.evaluate({"audience": "person", "groups": [{"where": where}]}, as_of=AS_OF).keys
        if got != expected:
            wrong[name] = (got, expected)
    assert wrong == {}
