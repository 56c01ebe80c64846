"""Record changes and restricted evaluation on every engine (DuckDB, then PostgreSQL).

The same library calls the CLI makes: ``records.apply_changes`` (one transaction, MERGE /
DELETE rendered for the engine's dialect, change ids kept in the engine) and
``records.evaluate_for_keys`` (``restrict_to`` pushed into every scan).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from sqlglot import exp

import segmenta
from segmenta.errors import DataError, EngineError, RejectedInput
from segmenta.services import records
from tests.engines.helpers import WorkspaceFactory, drop, workspace_on
from tests.test_conformance import library_ws  # noqa: F401 - the conformance set loaded on the engine under test

pytest_plugins = ["tests.engines.fixtures"]
#: Spark refuses record changes up front: they need a transactional engine.
REFUSED_ON_SPARK = pytest.mark.gap("spark", raises=RejectedInput, reason="record changes need a transactional engine")


def test_restricted_evaluation_equals_the_full_answer_within_the_keys_on_every_engine(
    library_ws: segmenta.Workspace,  # noqa: F811
    conformance_dir: Path,
    conformance_expected: dict,
) -> None:
    ws = library_ws
    as_of = dt.datetime.fromisoformat(conformance_expected["as_of"])
    for name, want in conformance_expected["members"].items():
        definition = ws.definition(conformance_dir / "segments" / f"{name}.json")
        audience = ws.model.table(definition.audience)
        every = ws.engine.column(exp.select(exp.column(audience.key, quoted=True)).from_(exp.to_table(definition.audience)))
        for keys in (every[::2], every[1::3] + [10**9], want[:1], []):
            got = records.evaluate_for_keys(ws, definition, keys, as_of=as_of)
            assert got == sorted(set(want) & set(keys)), (name, keys)


def order_rows(ws: segmenta.Workspace) -> dict[int, tuple]:
    q = exp.select("orderid", "contactid", "amount", "channel").from_(exp.Table(this=exp.to_identifier("order", quoted=True)))
    return {d["orderid"]: (d["contactid"], d["amount"], d["channel"]) for d in ws.engine.run(q).to_pylist()}


@REFUSED_ON_SPARK
def test_upsert_and_delete_apply_in_one_transaction_on_every_engine(
    make_ws: WorkspaceFactory, conformance_dir: Path, tmp_path: Path
) -> None:
    ws = make_ws(model=conformance_dir / "model.yaml")
    ws.load("order", conformance_dir / "data" / "order.csv")
    before = order_rows(ws)
    some = min(before)
    f = tmp_path / "o.ndjson"
    f.write_text(
        json.dumps({"orderid": some, "amount": "12.5", "_change_id": "a"})
        + "\n"
        + json.dumps({"orderid": 900001, "contactid": 1, "amount": 3, "channel": "web", "_change_id": "b"})
        + "\n"
    )
    applied = records.apply_changes(ws, "order", f, delete=False)
    result = applied.result
    assert (result.inserted, result.updated, result.skipped) == (1, 1, 0)
    assert applied.changed is None  # an insert changes every column
    assert applied.versions is not None
    assert sorted(applied.versions.column("orderid").to_pylist()) == sorted([some, some, 900001])  # old and new versions
    after = order_rows(ws)
    assert after[some][0] == before[some][0] and after[some][2] == before[some][2]  # columns not given are kept
    assert float(after[some][1]) == 12.5
    assert after[900001] == (1, after[900001][1], "web") and float(after[900001][1]) == 3
    again = records.apply_changes(ws, "order", f, delete=False).result
    assert (again.inserted, again.updated, again.skipped) == (0, 0, 2)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"orderid": 900002, "amount": 1}, {"orderid": 900003, "amount": "lots"}]))
    with pytest.raises(DataError, match="row 2") as caught:
        records.apply_changes(ws, "order", bad, delete=False)
    assert "amount" in str(caught.value)
    assert 900002 not in order_rows(ws)
    gone = tmp_path / "gone.csv"
    gone.write_text(f"orderid\n900001\n{some}\n123456789\n")
    deleted = records.apply_changes(ws, "order", gone, delete=True).result
    assert (deleted.deleted, deleted.unknown) == (2, 1)
    left = order_rows(ws)
    assert some not in left and 900001 not in left and len(left) == len(before) - 1


@REFUSED_ON_SPARK
def test_a_change_id_repeated_within_one_file_is_applied_once(
    make_ws: WorkspaceFactory, conformance_dir: Path, tmp_path: Path
) -> None:
    ws = make_ws(model=conformance_dir / "model.yaml")
    ws.load("order", conformance_dir / "data" / "order.csv")
    f = tmp_path / "twice.csv"
    f.write_text("orderid,contactid,amount,_change_id\n900010,1,5,x\n900011,1,6,x\n900012,1,7,\n")
    result = records.apply_changes(ws, "order", f, delete=False).result
    assert (result.inserted, result.skipped) == (2, 1)
    rows = order_rows(ws)
    assert 900010 in rows and 900011 not in rows and 900012 in rows


@REFUSED_ON_SPARK
def test_a_change_id_used_for_one_table_does_not_skip_a_row_of_another(
    make_ws: WorkspaceFactory, conformance_dir: Path, tmp_path: Path
) -> None:
    ws = make_ws(model=conformance_dir / "model.yaml")
    ws.load("order", conformance_dir / "data" / "order.csv")
    ws.load("account", conformance_dir / "data" / "account.csv")
    accounts = tmp_path / "a.ndjson"
    accounts.write_text(json.dumps({"accountid": 900001, "_change_id": "evt-1"}) + "\n")
    assert records.apply_changes(ws, "account", accounts, delete=False).result.inserted == 1
    orders = tmp_path / "o.ndjson"
    orders.write_text(json.dumps({"orderid": 900001, "contactid": 1, "amount": 4, "_change_id": "evt-1"}) + "\n")
    result = records.apply_changes(ws, "order", orders, delete=False).result
    assert (result.inserted, result.skipped) == (1, 0)
    assert 900001 in order_rows(ws)
    again = records.apply_changes(ws, "order", orders, delete=False).result  # within one table the id is still seen
    assert (again.inserted, again.updated, again.skipped) == (0, 0, 1)


@REFUSED_ON_SPARK
def test_several_changes_to_one_record_in_one_file_apply_in_file_order(
    make_ws: WorkspaceFactory, conformance_dir: Path, tmp_path: Path
) -> None:
    ws = make_ws(model=conformance_dir / "model.yaml")
    ws.load("order", conformance_dir / "data" / "order.csv")
    stream = [
        {"orderid": 900020, "contactid": 1, "amount": 1, "_change_id": "p"},
        {"orderid": 900020, "amount": 2, "channel": "web", "_change_id": "q"},
    ]
    f = tmp_path / "stream.ndjson"
    f.write_text("".join(json.dumps(r) + "\n" for r in stream))
    result = records.apply_changes(ws, "order", f, delete=False).result
    assert (result.inserted, result.updated, result.skipped) == (1, 0, 0)
    row = order_rows(ws)[900020]
    assert (row[0], float(row[1]), row[2]) == (1, 2.0, "web")  # each column: the last row giving it
    # the stream grows and is re-sent whole: the seen changes are skipped, the new one applied
    stream.append({"orderid": 900020, "amount": 3, "_change_id": "r"})
    f.write_text("".join(json.dumps(r) + "\n" for r in stream))
    result = records.apply_changes(ws, "order", f, delete=False).result
    assert (result.inserted, result.updated, result.skipped) == (0, 1, 2)
    row = order_rows(ws)[900020]
    assert (row[0], float(row[1]), row[2]) == (1, 3.0, "web")
    # without change ids too: a CSV naming one key twice applies its rows in order
    csv_file = tmp_path / "twice.csv"
    csv_file.write_text("orderid,amount\n900020,7\n900021,1\n900020,8\n")
    result = records.apply_changes(ws, "order", csv_file, delete=False).result
    assert (result.inserted, result.updated) == (1, 1)
    assert float(order_rows(ws)[900020][1]) == 8.0


@REFUSED_ON_SPARK
def test_a_bad_row_repeating_a_key_is_named_by_its_own_row(
    make_ws: WorkspaceFactory, conformance_dir: Path, tmp_path: Path
) -> None:
    ws = make_ws(model=conformance_dir / "model.yaml")
    ws.load("order", conformance_dir / "data" / "order.csv")
    before = order_rows(ws)
    f = tmp_path / "bad.ndjson"
    f.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [{"orderid": 900030, "amount": 1}, {"orderid": 900031, "amount": 2}, {"orderid": 900030, "amount": "lots"}]
        )
    )
    with pytest.raises(DataError) as caught:
        records.apply_changes(ws, "order", f, delete=False)
    assert "row 3 (line 3)" in str(caught.value) and "amount" in str(caught.value)
    assert order_rows(ws) == before


def test_two_concurrent_sends_of_one_file_apply_it_once_on_postgres(
    pg_url: str, conformance_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ws = workspace_on("postgres", request, tmp_path / "ws", model=conformance_dir / "model.yaml")
    other = None
    try:
        ws.load("order", conformance_dir / "data" / "order.csv")
        other = segmenta.Workspace.open(tmp_path / "ws")
        f = tmp_path / "new.ndjson"
        f.write_text(
            "".join(
                json.dumps({"orderid": 800000 + i, "contactid": 1, "amount": i, "_change_id": f"c{i}"}) + "\n"
                for i in range(3000)
            )
        )
        start = threading.Barrier(2)
        results: list[records.RecordsResult] = []
        errors: list[BaseException] = []

        def send(w: segmenta.Workspace) -> None:
            start.wait()
            try:
                results.append(records.apply_changes(w, "order", f, delete=False).result)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(w,)) for w in (ws, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(r.inserted for r in results) == [0, 3000]
        assert sorted(r.skipped for r in results) == [0, 3000]
        q = exp.select(exp.Count(this=exp.Star())).from_(exp.Table(this=exp.to_identifier("order", quoted=True)))
        got = ws.engine.column(q.where(exp.GTE(this=exp.column("orderid"), expression=exp.Literal.number(800000))))
        assert got == [3000]
    finally:
        if other is not None:
            other.close()
        drop(ws)


@pytest.mark.gap("spark", raises=EngineError, reason="its old table is made with a TEXT column, which Spark SQL lacks")
def test_change_ids_of_the_earlier_unkeyed_table_are_still_seen(
    make_ws: WorkspaceFactory, conformance_dir: Path, tmp_path: Path
) -> None:
    ws = make_ws(model=conformance_dir / "model.yaml")
    ws.load("order", conformance_dir / "data" / "order.csv")
    meta = exp.to_identifier(ws.engine.meta_schema, quoted=True).sql(dialect=ws.engine.dialect)
    ws.engine.run(f"CREATE SCHEMA IF NOT EXISTS {meta}")  # a workspace written by the version before the key
    ws.engine.run(f"CREATE TABLE {meta}.record_changes (change_id TEXT, table_name TEXT, applied_at TIMESTAMP)")
    ws.engine.run(f"INSERT INTO {meta}.record_changes VALUES ('old-1', 'order', NULL), ('old-1', 'order', NULL)")
    f = tmp_path / "o.ndjson"
    f.write_text(
        json.dumps({"orderid": 900040, "contactid": 1, "amount": 1, "_change_id": "old-1"})
        + "\n"
        + json.dumps({"orderid": 900041, "contactid": 1, "amount": 1, "_change_id": "new-1"})
        + "\n"
    )
    result = records.apply_changes(ws, "order", f, delete=False).result
    assert (result.inserted, result.skipped) == (1, 1)
    rows = order_rows(ws)
    assert 900040 not in rows and 900041 in rows
