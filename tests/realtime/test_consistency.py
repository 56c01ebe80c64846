"""The consistency property (issue 11 item 5): incremental membership always equals a full evaluation.

Hypothesis draws a random model, data and several live dynamic segments with the differential
generators (``tests.test_differential``: attributes, paths, related counts in windows,
aggregates, measures, groups; ``in_segment`` pointing at an earlier live segment), then a random
stream of steps through the Python API a user calls: inserts, partial updates, deletes and
deactivations (``records.upsert`` / ``records.delete``), and clock moves (``SEGMENTA_NOW``
forward, then ``incremental.apply_clock``). After EVERY step:

- each live segment's stored membership equals a full evaluation by the compiler at the current
  clock (``Workspace.evaluate``: ``compile_definition`` + the engine; ``in_segment`` reads the
  stored membership of the segment it names, itself checked first);
- the event log replayed from offset 0 (entered adds the key, exited removes it) equals the stored
  membership; an entered for a key already in, or an exited for one not in, fails at once (a
  duplicated or lost event);
- offsets increase strictly over the whole log, with no duplicate.

DuckDB runs ``SEGMENTA_CONSISTENCY_EXAMPLES`` examples (default 20) of 15 to 30 steps;
PostgreSQL ``SEGMENTA_POSTGRES_CONSISTENCY_EXAMPLES`` (default 4) of 6 to 12. Spark refuses record
changes; tests/spark/test_events_spark.py checks its events at small size.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import segmenta
from segmenta import clock
from segmenta.model.schema import Model
from segmenta.services import events, incremental, records
from segmenta.services.loading import arrow_schema
from segmenta.services.segments import Segments
from segmenta.store.database import Store, resolve_url
from tests.engines.helpers import drop, workspace_on
from tests.test_differential import AS_OFS, DANGLING, MAX_KEY, datasets, definitions, models, values

EXAMPLES = {
    "duckdb": int(os.environ.get("SEGMENTA_CONSISTENCY_EXAMPLES", "20")),
    "postgres": int(os.environ.get("SEGMENTA_POSTGRES_CONSISTENCY_EXAMPLES", "4")),
}
MAX_STEPS = {"duckdb": 30, "postgres": 12}
#: How far one clock move goes: to the second beside an edge, and over whole units.
CLOCK_STEPS = [
    dt.timedelta(seconds=1),
    dt.timedelta(hours=1),
    dt.timedelta(days=1),
    dt.timedelta(days=7),
    dt.timedelta(days=31),
    dt.timedelta(days=366),
]
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] if os.environ.get("SEGMENTA_NO_SHRINK") else list(Phase)
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
Data = dict[str, list[dict[str, Any]]]


def jsonable(v: Any) -> Any:
    """A stored value as a change file carries it (contract 5.2: the same text as ``load``)."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def rewrite_in_segment(cond: Any, allowed: list[str], *, audience: bool = True) -> Any:
    """``definitions`` names s1/s2 in ``in_segment``: point them at earlier live segments of t0.

    Where the scope is not the audience (under a path or a related block), or no segment is
    live yet, the condition becomes one on the key instead (every generated table has ``id``).
    """
    if isinstance(cond, list):
        return [rewrite_in_segment(c, allowed, audience=audience) for c in cond]
    if not isinstance(cond, dict):
        return cond
    here = audience and not cond.get("path")
    if "in_segment" in cond:
        if allowed and here:
            return {**cond, "in_segment": allowed[sum(map(ord, cond["in_segment"])) % len(allowed)]}
        rest = {k: v for k, v in cond.items() if k != "in_segment"}
        return {**rest, "attribute": "id", "op": "gt", "value": 3}
    inner = here and "related" not in cond
    return {k: rewrite_in_segment(v, allowed, audience=inner) for k, v in cond.items()}


def plain_models() -> st.SearchStrategy[Model]:
    """The differential models whose measures name no segment (a model cannot depend on saved segments)."""
    return models().filter(lambda m: "in_segment" not in json.dumps(m.to_data(), default=str))


class Checker:
    """Replays the log as a consumer would and compares it, and the stored membership, with full evaluations."""

    def __init__(self, segs: Segments, names: list[str]) -> None:
        self.segs = segs
        self.names = names
        self.replayed: dict[str, set[Any]] = {n: set() for n in names}
        self.cursor = 0

    def consume(self) -> None:
        while True:
            page = events.read(self.segs, after=self.cursor)
            if not page:
                return
            for e in page:
                assert e.offset > self.cursor, f"offset {e.offset} after {self.cursor}: not strictly increasing"
                self.cursor = e.offset
                members = self.replayed.setdefault(e.segment, set())
                if e.change == "entered":
                    assert e.key not in members, f"{e}: entered twice"
                    members.add(e.key)
                else:
                    assert e.change == "exited", e
                    assert e.key in members, f"{e}: exited without having entered"
                    members.discard(e.key)

    def check(self, step: str) -> None:
        self.consume()
        now = clock.now()
        live = incremental.live_dynamic(self.segs)
        assert sorted(live) == sorted(self.names), (step, sorted(live))
        for n in self.names:  # in publication order: an in_segment reads a segment checked before it
            stored = self.segs.members(n)[1]
            fresh = self.segs.ws.evaluate(live[n], as_of=now).keys
            assert stored == fresh, f"after {step}: {n} stored {stored} != full evaluation {fresh} at {now}"
            assert self.replayed[n] == set(stored), f"after {step}: {n} replay {sorted(self.replayed[n])} != {stored}"

    def replay_from_zero(self) -> None:
        """A consumer starting over from offset 0 gets the same membership (paged reads, nothing lost)."""
        again: dict[str, set[Any]] = {}
        cursor, offsets = 0, []
        while page := events.read(self.segs, after=cursor, limit=7):
            for e in page:
                offsets.append(e.offset)
                (again.setdefault(e.segment, set()).add if e.change == "entered" else again.setdefault(e.segment, set()).discard)(
                    e.key
                )
            cursor = page[-1].offset
        assert offsets == sorted(set(offsets)), "offsets repeat or go back"
        assert cursor == events.last_offset(self.segs) or not offsets
        for n in self.names:
            assert again.get(n, set()) == set(self.segs.members(n)[1]), n


@st.composite
def step(draw: st.DrawFn, model: Model, data: Data, as_of: dt.datetime) -> tuple[str, str, list[dict[str, Any]]]:
    """(kind, table, rows): one change of ``data`` (kept up to date in place), or a clock move (table '')."""
    t0 = model.table("t0")
    kinds = ["insert", "update", "update", "delete", "clock"]
    if t0.active is not None:
        kinds.append("deactivate")
    kind = draw(st.sampled_from(kinds))
    if kind == "clock":
        return kind, "", []
    table_name = "t0" if kind == "deactivate" else draw(st.sampled_from(sorted(model.tables)))
    table = model.table(table_name)
    rows = data[table_name]
    fks = {r.from_column: r.to_table for r in model.relationships if r.from_table == table_name}

    def value(c: str) -> Any:
        if c in fks:
            target = model.table(fks[c])
            return draw(st.sampled_from([None, DANGLING, *(r[target.key] for r in data[fks[c]])]))
        col = table.column(c)
        return jsonable(draw(values(col.type, col.choices, as_of)))

    settable = [c for c, col in table.columns.items() if c != table.key and not col.calculated]
    if kind == "insert" or not rows:
        existing = {r[table.key] for r in rows}
        free = [k for k in range(1, 3 * MAX_KEY + 3) if k not in existing]
        if not free:
            kind = "delete"
        else:
            new: list[dict[str, Any]] = []
            for key in draw(st.lists(st.sampled_from(free), min_size=1, max_size=2, unique=True)):
                row = {table.key: key, **{c: value(c) for c in settable}}
                new.append(row)
                rows.append(dict(row))
            return "insert", table_name, new
    if kind == "delete":
        gone = draw(st.lists(st.sampled_from([r[table.key] for r in rows]), min_size=1, max_size=2, unique=True))
        data[table_name] = [r for r in rows if r[table.key] not in gone]
        return kind, table_name, [{table.key: k} for k in gone] + ([{table.key: 10_000}] if draw(st.booleans()) else [])
    if kind == "deactivate":
        assert t0.active is not None
        on = t0.active.equals
        target = draw(st.sampled_from(rows))
        off = draw(st.sampled_from([on, None, (not on) if isinstance(on, bool) else on + 1]))
        target[t0.active.attribute] = off
        return kind, table_name, [{table.key: target[table.key], t0.active.attribute: off}]
    changed: list[dict[str, Any]] = []
    for target in draw(st.lists(st.sampled_from(rows), min_size=1, max_size=2, unique_by=lambda r: r[table.key])):
        given = draw(st.lists(st.sampled_from(settable), min_size=1, max_size=2, unique=True)) if settable else []
        patch = {c: value(c) for c in given}
        target.update(patch)
        changed.append({table.key: target[table.key], **patch})
    return "update", table_name, changed


def run_stream(ws: segmenta.Workspace, monkeypatch: pytest.MonkeyPatch, data_obj: st.DataObject, engine: str) -> int:
    """One example: model and data loaded, live segments published, then the steps; returns how many steps ran."""
    model = ws.model
    as_of = data_obj.draw(st.sampled_from(AS_OFS), label="as_of")
    now = as_of
    monkeypatch.setenv("SEGMENTA_NOW", now.isoformat())
    data: Data = data_obj.draw(datasets(model, as_of), label="data")
    for name, table in model.tables.items():
        ws.engine.replace_table(name, table, pa.Table.from_pylist(data[name], schema=arrow_schema(table)))
    # records carry JSON text values; keep the model's view of the data in the same shape
    data = {n: [{c: jsonable(v) for c, v in r.items()} for r in rows] for n, rows in data.items()}
    store = Store(resolve_url(ws.path, ws.config))
    try:
        segs = Segments(ws, store)
        names: list[str] = []
        for i in range(data_obj.draw(st.integers(2, 4), label="segments")):
            raw = data_obj.draw(definitions(model), label=f"definition {i}")
            raw = {**raw, "groups": rewrite_in_segment(raw["groups"], names)}
            reader: bool = bool(names) and data_obj.draw(st.booleans(), label=f"reader {i}")
            if reader:  # a reader of a live segment, for sure
                link = data_obj.draw(st.sampled_from(["and_also", "or", "but_not"]), label=f"link {i}")
                upstream = data_obj.draw(st.sampled_from(names), label=f"reads {i}")
                raw["groups"] = [{"where": {"in_segment": upstream}}, {"link": link, "where": raw["groups"][0]["where"]}]
            name = f"live{i}"
            segs.create(raw, name=name)
            segs.publish(name)
            names.append(name)
        started = time.monotonic()
        checker = Checker(segs, names)
        checker.check("publish")
        steps = data_obj.draw(st.integers(MAX_STEPS[engine] // 2, MAX_STEPS[engine]), label="steps")
        change_dir = Path(tempfile.mkdtemp(prefix="changes-", dir=ws.path))
        for i in range(steps):
            kind, changed, rows = data_obj.draw(step(model, data, as_of), label=f"step {i}")
            if kind == "clock":
                before = now
                now = now + data_obj.draw(st.sampled_from(CLOCK_STEPS), label=f"clock {i}")
                monkeypatch.setenv("SEGMENTA_NOW", now.isoformat())
                _, failed = incremental.apply_clock(segs, names, before=before, after=now)
                assert failed == []
                what = f"step {i}: clock {before} -> {now}"
            else:
                f = change_dir / f"{i}.ndjson"
                f.write_text("".join(json.dumps({**r, "_change_id": f"{i}-{j}"}) + "\n" for j, r in enumerate(rows)))
                result = (records.delete if kind == "delete" else records.upsert)(segs, changed, f)
                assert result.failed == [], result.failed
                what = f"step {i}: {kind} {changed} {rows}"
            checker.check(what)
        if os.environ.get("SEGMENTA_CONSISTENCY_TRACE"):
            print(f"{steps} steps in {time.monotonic() - started:.1f}s")
        checker.replay_from_zero()
        return steps
    finally:
        store.close()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_incremental_membership_equals_a_full_evaluation_after_every_step(
    engine: str, scratch: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    total = [0]

    @settings(max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=SLOW, phases=PHASES)
    @given(st.data())
    def stream(data_obj: st.DataObject) -> None:
        model = data_obj.draw(plain_models(), label="model")
        path = scratch / uuid.uuid4().hex[:12]
        ws = workspace_on(engine, request, path, model=model)
        try:
            total[0] += run_stream(ws, monkeypatch, data_obj, engine)
        finally:
            drop(ws)
            shutil.rmtree(path, ignore_errors=True)

    stream()
    print(f"{engine}: {total[0]} steps checked")
