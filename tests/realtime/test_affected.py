"""Which audience records a change touches (compiler/affected.py), checked on random models, data and changes.

Soundness: every audience key whose membership differs between a full evaluation before
and after a random change is among the affected keys. Smallness: no affected key is
unrelated to the changed rows (every one is linked to a changed row, old or new version,
through the relationships). Both run on DuckDB with the differential generators.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from segmenta import Workspace
from segmenta.compiler.affected import affected_by_segment, affected_keys, foreign_keys
from segmenta.compiler.reads import Scope, segment_reads
from segmenta.engines.duckdb import DuckDBEngine
from segmenta.model.schema import Model
from segmenta.model.validate import parse_definition
from segmenta.services.loading import arrow_schema
from tests.test_differential import AS_OFS, DANGLING, MAX_KEY, SEGMENT_NAMES, datasets, definitions, models, values, workspace

EXAMPLES = int(os.environ.get("SEGMENTA_AFFECTED_EXAMPLES", "100"))
Data = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def engine() -> DuckDBEngine:
    shared = DuckDBEngine()
    yield shared
    shared.close()


@st.composite
def changes(
    draw: st.DrawFn, model: Model, data: Data, as_of: dt.datetime, scopes: list[Scope]
) -> tuple[str, Data, list[dict[str, Any]], set[str] | None]:
    """(table, data after, old and new versions of the changed rows, the columns set or None for all).

    Mostly a change of what a definition reads, on one of its scopes (deep ones as often as
    shallow), so that changes several hops away from the audience come up.
    """
    scope = draw(st.sampled_from(scopes)) if scopes and draw(st.integers(0, 4)) else None
    table = scope.table if scope is not None else draw(st.sampled_from(sorted(model.tables)))
    t = model.table(table)
    read = sorted(c for c in (scope.columns if scope is not None else ()) if c != t.key)
    fks = {r.from_column: r.to_table for r in model.relationships if r.from_table == table}
    after = copy.deepcopy(data)
    rows = after[table]
    versions: list[dict[str, Any]] = []
    columns: set[str] | None = set()

    def value(c: str) -> Any:
        if c in fks:
            return draw(st.sampled_from([None, DANGLING, *(r[model.table(fks[c]).key] for r in after[fks[c]])]))
        col = t.column(c)
        return draw(values(col.type, col.choices, as_of))

    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["update", "update", "insert", "delete"] if rows else ["insert"]))
        if kind == "insert":
            existing = {r[t.key] for r in rows}
            key = draw(st.sampled_from([k for k in range(1, 3 * MAX_KEY + 3) if k not in existing]))
            row = {c: (key if c == t.key else value(c)) for c in t.columns}
            rows.append(row)
            versions.append(row)
            columns = None
        elif kind == "delete":
            row = rows.pop(draw(st.integers(0, len(rows) - 1)))
            versions.append(row)
            columns = None
        else:
            i = draw(st.integers(0, len(rows) - 1))
            old = rows[i]
            others = sorted(c for c in t.columns if c != t.key)
            pick = st.sampled_from(read) if read and draw(st.booleans()) else st.sampled_from(others)
            names = draw(st.lists(pick, min_size=1, max_size=3, unique=True))
            new = {**old, **{c: value(c) for c in names}}
            rows[i] = new
            versions += [old, new]
            if columns is not None:
                columns |= set(names)
        if not rows:
            break
    return table, after, versions, columns


def linked(model: Model, before: Data, after: Data, table: str, versions: list[dict[str, Any]]) -> set[Any]:
    """Audience (t0) keys linked to a changed row through any chain of foreign keys, in either data."""
    edges: dict[tuple[str, Any], set[tuple[str, Any]]] = {}
    for data in (before, after):
        for rel in model.relationships:
            src_key = model.table(rel.from_table).key
            for row in data[rel.from_table]:
                if row[rel.from_column] is not None:
                    a, b = (rel.from_table, row[src_key]), (rel.to_table, row[rel.from_column])
                    edges.setdefault(a, set()).add(b)
                    edges.setdefault(b, set()).add(a)
    for version in versions:  # a deleted or replaced version's links count too
        for rel in model.relationships:
            if rel.from_table == table and version[rel.from_column] is not None:
                a, b = (table, version[model.table(table).key]), (rel.to_table, version[rel.from_column])
                edges.setdefault(a, set()).add(b)
                edges.setdefault(b, set()).add(a)
    seen = {(table, v[model.table(table).key]) for v in versions}
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return {k for t, k in seen if t == "t0"}


def load(ws: Workspace, model: Model, data: Data) -> None:
    for name, table in model.tables.items():
        ws.engine.replace_table(name, table, pa.Table.from_pylist(data[name], schema=arrow_schema(table)))


def staged_versions(ws: Workspace, model: Model, table: str, versions: list[dict[str, Any]]) -> exp.Query:
    t = model.table(table)
    cols = [t.key, *foreign_keys(model, table)]
    schema = pa.schema([arrow_schema(t).field(c) for c in cols])
    staged = ws.engine.stage("changed_versions", pa.Table.from_pylist([{c: v[c] for c in cols} for v in versions], schema=schema))
    return exp.select(*[exp.column(c, quoted=True) for c in cols]).from_(staged)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_affected_keys_hold_every_membership_change_and_nothing_unrelated(engine: DuckDBEngine, data: st.DataObject) -> None:
    model = data.draw(models(), label="model")
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    before = data.draw(datasets(model, as_of), label="data")
    segments = {name: set(data.draw(st.lists(st.integers(1, DANGLING), max_size=5), label=name)) for name in SEGMENT_NAMES}
    raws = [data.draw(definitions(model), label=f"definition {i}") for i in range(data.draw(st.integers(1, 4), label="n"))]
    parsed = [parse_definition(raw, model) for raw in raws]
    scopes = sorted({s for p in parsed for s in segment_reads(p, model).scopes}, key=lambda s: (s.route, s.table))
    table, after, versions, columns = data.draw(changes(model, before, as_of, scopes), label="change")
    ws = workspace(engine, model, before, segments)
    old = [set(ws.evaluate(p, as_of=as_of).keys) for p in parsed]
    changed = staged_versions(ws, model, table, versions)
    queries = [affected_keys(model, segment_reads(p, model), table, changed, columns=columns) for p in parsed]
    affected_before = [set() if q is None else set(ws.engine.column(q)) for q in queries]
    load(ws, model, after)
    new = [set(ws.evaluate(p, as_of=as_of).keys) for p in parsed]
    affected_after = [set() if q is None else set(ws.engine.column(q)) for q in queries]
    related = linked(model, before, after, table, versions)
    for raw, o, n, ab, aa in zip(raws, old, new, affected_before, affected_after, strict=True):
        moved = o ^ n
        assert moved <= aa, f"{sorted(moved - aa)} changed membership but are not affected\n{raw}\n{table} {versions}"
        assert ab == aa, "the answer depends on whether the query runs before or after the change"
        assert aa <= related, f"{sorted(aa - related)} are not linked to the changed rows\n{raw}\n{table} {versions}"


def test_an_order_moved_between_contacts_affects_both(conformance_ws: Workspace) -> None:
    model = conformance_ws.model
    definition = parse_definition(
        {"audience": "contact", "groups": [{"where": {"related": "orders", "count": {"op": "gte", "value": 1}}}]}, model
    )
    reads = segment_reads(definition, model)
    moved = exp.select(
        exp.alias_(exp.Literal.number(990001), "orderid", quoted=True),
        exp.alias_(exp.Literal.number(1), "contactid", quoted=True),
    ).union(
        exp.select(
            exp.alias_(exp.Literal.number(990001), "orderid", quoted=True),
            exp.alias_(exp.Literal.number(2), "contactid", quoted=True),
        ),
        distinct=False,
    )
    query = affected_keys(model, reads, "order", moved, columns={"contactid"})
    assert query is not None
    assert sorted(conformance_ws.engine.column(query)) == [1, 2]
    assert affected_keys(model, reads, "order", moved, columns={"amount"}) is None  # the count reads no amount
    assert affected_keys(model, reads, "account", moved, columns=None) is None


def test_an_account_affects_its_contacts_and_a_contact_the_leads_through_it(conformance_ws: Workspace) -> None:
    model = conformance_ws.model
    ws = conformance_ws
    via_account = parse_definition(
        {
            "audience": "contact",
            "groups": [{"where": {"path": ["account"], "attribute": "industry", "op": "eq", "value": "Tech"}}],
        },
        model,
    )
    account = ws.engine.column(
        exp.select(exp.column("parentaccountid", quoted=True)).from_("contact").where("parentaccountid IS NOT NULL").limit(1)
    )[0]
    changed = exp.select(exp.alias_(exp.Literal.number(account), "accountid", quoted=True))
    query = affected_keys(model, segment_reads(via_account, model), "account", changed, columns={"industry"})
    assert query is not None
    want = ws.engine.column(f"SELECT contactid FROM contact WHERE parentaccountid = {account} ORDER BY 1")
    assert sorted(ws.engine.column(query)) == want
    lead_via_contact = parse_definition(
        {
            "audience": "lead",
            "groups": [{"where": {"path": ["contact", "account"], "attribute": "industry", "op": "eq", "value": "Tech"}}],
        },
        model,
    )
    contact = ws.engine.column("SELECT parentcontactid FROM lead WHERE parentcontactid IS NOT NULL LIMIT 1")[0]
    changed_contact = exp.select(
        exp.alias_(exp.Literal.number(contact), "contactid", quoted=True), exp.alias_(exp.Null(), "parentaccountid", quoted=True)
    )
    query = affected_keys(model, segment_reads(lead_via_contact, model), "contact", changed_contact, columns={"parentaccountid"})
    assert query is not None
    assert sorted(ws.engine.column(query)) == ws.engine.column(
        f"SELECT leadid FROM lead WHERE parentcontactid = {contact} ORDER BY 1"
    )


def test_an_account_two_hops_away_affects_the_leads_of_its_contacts(conformance_ws: Workspace) -> None:
    model = conformance_ws.model
    ws = conformance_ws
    definition = parse_definition(
        {
            "audience": "lead",
            "groups": [{"where": {"path": ["contact", "account"], "attribute": "industry", "op": "eq", "value": "Tech"}}],
        },
        model,
    )
    account = ws.engine.column(
        "SELECT c.parentaccountid FROM lead l JOIN contact c ON l.parentcontactid = c.contactid"
        " WHERE c.parentaccountid IS NOT NULL ORDER BY 1 LIMIT 1"
    )[0]
    changed = exp.select(exp.alias_(exp.Literal.number(account), "accountid", quoted=True))
    query = affected_keys(model, segment_reads(definition, model), "account", changed, columns={"industry"})
    assert query is not None
    want = ws.engine.column(
        "SELECT l.leadid FROM lead l JOIN contact c ON l.parentcontactid = c.contactid"
        f" WHERE c.parentaccountid = {account} ORDER BY 1"
    )
    assert want and sorted(ws.engine.column(query)) == want


def test_a_membership_change_of_a_segment_affects_the_records_that_read_it_for_those_keys_only(
    conformance_ws: Workspace,
) -> None:
    ws = conformance_ws
    model = ws.model
    definition = parse_definition(
        {
            "audience": "lead",
            "groups": [{"where": {"any": [{"in_segment": "vip"}, {"path": ["contact"], "in_segment": "gold"}]}}],
        },
        model,
    )
    reads = segment_reads(definition, model)
    contact = ws.engine.column("SELECT parentcontactid FROM lead WHERE parentcontactid IS NOT NULL ORDER BY 1 LIMIT 1")[0]
    gold_changed = exp.select(exp.alias_(exp.Literal.number(contact), "contactid", quoted=True))
    query = affected_by_segment(model, reads, "gold", gold_changed)
    assert query is not None
    want = ws.engine.column(f"SELECT leadid FROM lead WHERE parentcontactid = {contact} ORDER BY 1")
    assert want and sorted(ws.engine.column(query)) == want
    vip_changed = exp.select(exp.alias_(exp.Literal.number(3), "leadid", quoted=True))
    query = affected_by_segment(model, reads, "vip", vip_changed)
    assert query is not None and ws.engine.column(query) == [3]  # read on the lead itself
    assert affected_by_segment(model, reads, "other", vip_changed) is None
