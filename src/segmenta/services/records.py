"""Record changes in (contract 5.2): upsert and delete records of a model table, all or nothing.

A file (.csv, .json array, .ndjson, or NDJSON on stdin) first loses the rows whose
``_change_id`` was applied to the table before (or earlier in the file); the rest is checked
whole with the same checks as ``load`` (``services.loading``): a bad row rejects the file,
with its row and column named, and nothing is applied. Several rows for one key are a
change stream: they apply in file order (each column the value of the last row giving it).
The change is then applied in ONE engine transaction (DuckDB or PostgreSQL; Spark is
refused), as sqlglot trees rendered for the engine's dialect: the change ids first, into a
table keyed by (table_name, change_id) in the engine's own schema - an id another sender
took meanwhile is not inserted, and the rows carrying it are not applied - then a ``MERGE``
(update the columns a row gives, insert new keys) or a ``DELETE``.

The same transaction records the batch (``record_batches``) and the changed rows' old and
new versions. Membership then follows incrementally (:func:`apply_pending`): each live
dynamic segment whose reads (:mod:`segmenta.compiler.reads`) include a changed column is
evaluated for the audience records the change can reach (:mod:`segmenta.compiler.affected`)
and its membership written for those keys only, with their events; segments reading a
written one through ``in_segment`` follow for the keys that moved. A crash after the change
committed leaves the batch pending: the next record change, or the worker's next pass,
writes it (idempotently: the keys are evaluated against the data as it is then).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from segmenta import clock
from segmenta.compiler.affected import foreign_keys
from segmenta.compiler.compile import compile_definition
from segmenta.errors import DataError, NotFound, Problem, RejectedInput
from segmenta.model.schema import Table, hint
from segmenta.services.loading import _convert, _read_csv_text, arrow_schema

if TYPE_CHECKING:
    from segmenta.model.definition import Definition
    from segmenta.services.segments import Segments
    from segmenta.workspace import Workspace

CHANGE_ID = "_change_id"
#: The engine table (in the engine's meta schema) of change ids already applied, keyed by (table_name, change_id).
SEEN_TABLE = "record_change_ids"
#: Its name before it had a key (no table scope); its ids are moved over once.
OLD_SEEN_TABLE = "record_changes"
#: The trigger of the refresh runs a record change starts.
TRIGGER = "records"
#: The engine table of record changes whose membership consequences are not all written yet.
BATCHES_TABLE = "record_batches"
#: Each pending batch's table of the changed rows' old and new versions (key and foreign keys).
VERSIONS_PREFIX = "record_versions_"
#: At most this many change ids are named in an event's cause (the rest are counted).
MAX_CAUSE_IDS = 100
_HAS = "__has_"
_GROUP = "__group"


@dataclass
class RecordsResult:
    """What one ``records upsert|delete`` did."""

    table: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0  # rows whose _change_id was applied before (or earlier in the same file)
    unknown: int = 0  # delete: keys no record has
    refreshed: list[str] = field(default_factory=list)  # live dynamic segments refreshed (in full, for now)
    #: live dynamic segments whose refresh failed: {"segment", "error"}; each is due now (the worker retries it)
    failed: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.table}: {self.inserted} inserted, {self.updated} updated, {self.deleted} deleted, "
            f"{self.skipped} skipped duplicates, {self.unknown} unknown keys; "
            f"{len(self.refreshed)} segments refreshed" + (f", {len(self.failed)} failed" if self.failed else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading a change file ----------------------------------------------------------------------


@dataclass
class _Raw:
    """A change file as text cells, in file order, before typing."""

    raw: pa.Table  # one string column per header column
    header: list[str]
    given: dict[str, list[bool]]  # per header column: whether each row gives it
    change_ids: list[str | None]
    wheres: list[str]  # per row: how a problem names it ("data row 3 (line 4)", "row 2 (line 3)")
    label: str  # the file as problems name it

    def keep(self, rows: list[int]) -> _Raw:
        idx = pa.array(rows, pa.int64())
        return _Raw(
            self.raw.take(idx),
            self.header,
            {h: [v[i] for i in rows] for h, v in self.given.items()},
            [self.change_ids[i] for i in rows],
            [self.wheres[i] for i in rows],
            self.label,
        )


@dataclass
class _Changes:
    rows: pa.Table  # typed, the model's types; only the table's columns; one row per key (collapsed)
    present: list[pa.Array]  # per non-key column of the table: whether each row gives it
    groups: list[list[str]]  # per row: the change ids of the file rows it collapses


def read_raw(source: str | Path, table: Table, *, delete: bool = False) -> _Raw:
    """A change file's rows as text cells, their change ids and where each row is; raises :class:`DataError`."""
    if str(source) == "-":
        return _from_objects(_ndjson(sys.stdin.read(), "stdin"), "stdin", table, delete=delete)
    path = Path(source)
    if not path.is_file():
        raise DataError([Problem(str(path), "no such file")])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw, header = _read_csv_text(path)
        ids: list[str | None] = [None] * raw.num_rows
        if CHANGE_ID in header:
            ids = [None if v in (None, "") else v for v in raw.column(CHANGE_ID).to_pylist()]
            raw = raw.drop_columns([CHANGE_ID])
            header = [h for h in header if h != CHANGE_ID]
        if delete:
            keep = [h for h in header if h == table.key]
            raw, header = raw.select(keep), keep
        wheres = [f"data row {i} (line {i + 1})" for i in range(1, raw.num_rows + 1)]
        return _Raw(raw, header, {h: [True] * raw.num_rows for h in header}, ids, wheres, path.name)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            [Problem(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8")]
        ) from None
    if suffix == ".ndjson":
        return _from_objects(_ndjson(text, path.name), path.name, table, delete=delete)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError([Problem(f"{path.name}: line {exc.lineno}", f"not valid JSON: {exc.msg}")]) from None
        if not isinstance(data, list):
            raise DataError([Problem(path.name, "a .json change file is an array of objects, one per record")])
        return _from_objects([(i + 1, f"row {i + 1}", v) for i, v in enumerate(data)], path.name, table, delete=delete)
    raise DataError([Problem(str(path), f"unknown file type {suffix!r}; records take .csv, .json (an array) or .ndjson")])


def _ndjson(text: str, label: str) -> list[tuple[int, str, Any]]:
    out: list[tuple[int, str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError([Problem(f"{label}: line {lineno}", f"not valid JSON: {exc.msg}")]) from None
        out.append((len(out) + 1, f"row {len(out) + 1} (line {lineno})", value))
    return out


def _from_objects(items: list[tuple[int, str, Any]], label: str, table: Table, *, delete: bool) -> _Raw:
    problems: list[Problem] = []
    header: list[str] = []
    for _, where, obj in items:
        if not isinstance(obj, dict):
            problems.append(Problem(f"{label}: {where}", f"a record is a JSON object of column: value, not {type(obj).__name__}"))
            continue
        for k in obj:
            if k != CHANGE_ID and k not in header and not (delete and k != table.key):
                header.append(k)
    if problems:
        raise DataError(problems[:20])
    ids: list[str | None] = []
    columns: dict[str, list[str | None]] = {h: [] for h in header}
    given: dict[str, list[bool]] = {h: [] for h in header}
    for _, where, obj in items:
        cid = obj.get(CHANGE_ID)
        if cid is not None and not isinstance(cid, (str, int)):
            problems.append(Problem(f"{label}: {where}", f"column {CHANGE_ID!r}: a change id is a string or a number"))
        ids.append(None if cid in (None, "") else str(cid))
        for h in header:
            given[h].append(h in obj)
            value = obj.get(h)
            if isinstance(value, dict):
                problems.append(Problem(f"{label}: {where}", f"column {h!r}: an object is not a value"))
            columns[h].append(_as_text(value))
    if problems:
        raise DataError(problems[:20])
    raw = pa.table({h: pa.array(v, pa.string()) for h, v in columns.items()})  # no columns: loading names the missing key
    return _Raw(raw, header, given, ids, [where for _, where, _ in items], label)


def _typed(raw: _Raw, name: str, table: Table) -> pa.Table:
    """``raw``'s rows typed and checked like ``load``, in file order; a key given by several rows is allowed.

    ``load`` refuses a repeated key, so the rows are typed in rounds (the first row of each
    key, then the second, ...), each round with unique keys; problems name the file's rows.
    """
    n = len(raw.wheres)
    if n == 0:
        return arrow_schema(table).empty_table()
    if table.key in raw.header:
        counts: dict[Any, int] = {}
        occurrence = []
        for k in raw.raw.column(table.key).to_pylist():
            if k is None:
                occurrence.append(0)
                continue
            k = k.strip()
            occurrence.append(counts.get(k, 0))
            counts[k] = occurrence[-1] + 1
    else:
        occurrence = [0] * n
    rounds: list[list[int]] = [[] for _ in range(max(occurrence) + 1)]
    for i, r in enumerate(occurrence):
        rounds[r].append(i)
    parts: list[pa.Table] = []
    problems: list[Problem] = []
    for rows in rounds:
        sub = raw.raw.take(pa.array(rows, pa.int64())) if len(rounds) > 1 else raw.raw
        try:
            parts.append(_convert(sub, raw.header, name, table, Path(raw.label), text=True))
        except DataError as exc:
            wheres = {j + 1: raw.wheres[i] for j, i in enumerate(rows)}
            problems.extend(_relocate(p, wheres) for p in exc.problems)
    if problems:
        raise DataError(problems[:20])
    if len(parts) == 1:
        return parts[0]
    order = [i for rows in rounds for i in rows]  # file row of each concatenated row
    position = [0] * n
    for at, i in enumerate(order):
        position[i] = at
    return pa.concat_tables(parts).take(pa.array(position, pa.int64()))


def _collapse(raw: _Raw, typed: pa.Table, table: Table) -> _Changes:
    """One row per key, in the order keys first appear: each column the value of the LAST row giving it."""
    keys = typed.column(table.key).to_pylist()
    group_of: dict[Any, int] = {}
    first: list[int] = []
    groups: list[list[str]] = []
    for i, k in enumerate(keys):
        if k not in group_of:
            group_of[k] = len(first)
            first.append(i)
            groups.append([])
        cid = raw.change_ids[i]
        if cid is not None:
            groups[group_of[k]].append(cid)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    present: list[pa.Array] = []
    for c in table.columns:
        if c == table.key or c not in raw.given:
            columns[c] = typed.column(c).take(pa.array(first, pa.int64()))
            if c != table.key:
                present.append(pa.array([False] * len(first), pa.bool_()))
            continue
        last = list(first)
        has = [False] * len(first)
        for i, k in enumerate(keys):
            if raw.given[c][i]:
                g = group_of[k]
                last[g], has[g] = i, True
        columns[c] = typed.column(c).take(pa.array(last, pa.int64()))
        present.append(pa.array(has, pa.bool_()))
    return _Changes(pa.table(columns, schema=typed.schema), present, groups)


def read_changes(source: str | Path, name: str, table: Table, *, delete: bool = False) -> _Changes:
    """The rows of a change file, typed and checked like ``load``, one per key; raises :class:`DataError` naming row and column."""
    raw = read_raw(source, table, delete=delete)
    return _collapse(raw, _typed(raw, name, table), table)


_ROW = re.compile(r"data row (\d+) \(line \d+\)")


def _relocate(problem: Problem, wheres: dict[int, str]) -> Problem:
    """loading's 'data row N (line N+1)' (of the rows it was given) as the file's row (and line)."""
    where = _ROW.sub(lambda m: wheres.get(int(m.group(1)), f"row {m.group(1)}"), problem.where)
    message = _ROW.sub(lambda m: wheres.get(int(m.group(1)), f"row {m.group(1)}"), problem.message)
    return Problem(where, message)


def _as_text(value: Any) -> str | None:
    """A JSON value as load's CSV text: null and "" are null, booleans true/false, a list a ';'-joined choices cell."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


# -- applying -----------------------------------------------------------------------------------


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_ident(name), table=_ident(table) if table else None)


def _seen_table(ws: Workspace) -> exp.Table:
    return exp.Table(this=_ident(SEEN_TABLE), db=_ident(ws.engine.meta_schema))


def _ensure_seen_table(ws: Workspace) -> None:
    """The table of applied change ids, keyed by (table_name, change_id): a key taken by one sender is refused to the next."""
    if ws.engine.__dict__.get("_segmenta_seen_ready"):
        return
    schema = exp.Create(this=exp.Table(this=_ident(ws.engine.meta_schema)), kind="SCHEMA", exists=True)
    columns: list[exp.Expr] = [
        exp.ColumnDef(
            this=_ident("table_name"),
            kind=exp.DataType.build("TEXT"),
            constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())],
        ),
        exp.ColumnDef(
            this=_ident("change_id"),
            kind=exp.DataType.build("TEXT"),
            constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())],
        ),
        exp.ColumnDef(this=_ident("applied_at"), kind=exp.DataType.build("TIMESTAMP")),
        exp.ColumnDef(this=_ident("batch"), kind=exp.DataType.build("TEXT")),
        exp.PrimaryKey(expressions=[_ident("table_name"), _ident("change_id")]),
    ]
    create = exp.Create(this=exp.Schema(this=_seen_table(ws), expressions=columns), kind="TABLE", exists=True)
    # On PostgreSQL two first senders would race on CREATE ... IF NOT EXISTS: one at a time
    lock = _lock(ws)
    statements: list[exp.Expr] = [*lock, schema, create]
    old = exp.Table(this=_ident(OLD_SEEN_TABLE), db=_ident(ws.engine.meta_schema))
    exists = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(exp.Table(this=_ident("tables"), db=_ident("information_schema")))
        .where(
            exp.and_(
                exp.EQ(this=_col("table_schema"), expression=exp.Literal.string(ws.engine.meta_schema)),
                exp.EQ(this=_col("table_name"), expression=exp.Literal.string(OLD_SEEN_TABLE)),
            )
        )
    )
    ws.engine.execute([*lock, schema])
    if int(ws.engine.column(exists)[0]):  # the table of an earlier version (no key): its ids, once each, then gone
        copy = (
            exp.select(_col("table_name"), _col("change_id"), exp.Min(this=_col("applied_at")), exp.Null())
            .from_(old)
            .where(exp.Not(this=exp.Is(this=_col("change_id"), expression=exp.Null())))
            .where(exp.Not(this=exp.Is(this=_col("table_name"), expression=exp.Null())))
            .group_by(_col("table_name"), _col("change_id"))
        )
        statements += [
            exp.insert(copy, _seen_table(ws), columns=["table_name", "change_id", "applied_at", "batch"]),
            exp.Drop(tables=[old], kind="TABLE", exists=True),
        ]
    ws.engine.execute(statements)
    ws.engine.__dict__["_segmenta_seen_ready"] = True


def _seen_filter(ws: Workspace, name: str) -> exp.Select:
    return (
        exp.select(_col("change_id"))
        .from_(_seen_table(ws))
        .where(exp.EQ(this=_col("table_name"), expression=exp.Literal.string(name)))
    )


def _keep_new_ids(ws: Workspace, name: str, ids: list[str | None]) -> tuple[list[int], int]:
    """The rows to apply: those without a change id, or with one neither applied to ``name`` before nor earlier in the file.

    A first look, outside the transaction (so a bad row whose change was applied before does
    not refuse a re-sent file); the transaction checks again (:func:`apply_changes`).
    """
    wanted = sorted({i for i in ids if i is not None})
    seen: set[str] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        q = _seen_filter(ws, name).where(exp.In(this=_col("change_id"), expressions=[exp.Literal.string(i) for i in chunk]))
        seen.update(ws.engine.column(q))
    keep = []
    for at, i in enumerate(ids):
        if i is None:
            keep.append(at)
        elif i not in seen:
            keep.append(at)
            seen.add(i)
    return keep, len(ids) - len(keep)


def _existing_keys(ws: Workspace, name: str, key: str, staged: exp.Table) -> set[Any]:
    q = (
        exp.select(_col(key))
        .from_(exp.Table(this=_ident(name)))
        .where(exp.In(this=_col(key), query=exp.select(_col(key)).from_(staged.copy()).subquery(copy=False)))
    )
    return set(ws.engine.column(q))


@dataclass
class Applied:
    """One applied change file: its counts, the columns it set (None: every column) and the changed rows' versions."""

    result: RecordsResult
    changed: set[str] | None
    versions: pa.Table | None  # key and foreign keys of the changed rows, before and after (compiler.affected's input)
    batch: str | None = None  # the pending batch the change left for the membership (:func:`apply_pending`)


def meta_table(ws: Workspace, name: str) -> exp.Table:
    return exp.Table(this=_ident(name), db=_ident(ws.engine.meta_schema))


def versions_table(ws: Workspace, batch: str) -> exp.Table:
    """The table of a pending batch's changed rows, old and new versions (key and foreign keys)."""
    return meta_table(ws, f"{VERSIONS_PREFIX}{batch}")


def _ensure_batches_table(ws: Workspace) -> None:
    """The pending batches: record changes whose membership consequences are not all written yet."""
    if ws.engine.__dict__.get("_segmenta_batches_ready"):
        return
    columns: list[exp.Expr] = [
        exp.ColumnDef(this=_ident(c), kind=exp.DataType.build(t))
        for c, t in (("batch", "TEXT"), ("table_name", "TEXT"), ("columns", "TEXT"), ("cause", "TEXT"), ("at", "TIMESTAMP"))
    ]
    columns.append(exp.PrimaryKey(expressions=[_ident("batch")]))
    create = exp.Create(this=exp.Schema(this=meta_table(ws, BATCHES_TABLE), expressions=columns), kind="TABLE", exists=True)
    ws.engine.execute([*ws.engine.serialise("records"), create])
    ws.engine.__dict__["_segmenta_batches_ready"] = True


def apply_changes(ws: Workspace, name: str, source: str | Path, *, delete: bool) -> Applied:
    """Check and apply one change file in one transaction, leaving a pending batch for the membership.

    Rows whose change id was applied to ``name`` before are dropped first; the remaining rows
    of one key are applied in file order (each column: the last row giving it). Inside the
    transaction the file's change ids are inserted first, under the key (table_name,
    change_id): an id another sender has taken meanwhile is not inserted, and the rows of a
    key carrying such an id are then not applied (that sender applied them).

    The same transaction records the changed rows' old and new versions (key and foreign
    keys) in a table of the batch's own and the batch in ``record_batches``: whatever happens
    after the commit (a crash included), :func:`apply_pending` knows which records the change
    may move in or out of which segment, and the change is never applied without them.
    """
    if not ws.engine.supports_record_changes:  # checked before the engine starts (a Spark session is not needed)
        raise RejectedInput(
            [
                Problem(
                    "--engine",
                    f"record changes need a transactional engine (duckdb or postgres); this workspace uses {ws.engine.dialect}",
                )
            ]
        )
    if name not in ws.model.tables:
        raise NotFound([Problem(name, f"unknown table{hint(name, ws.model.tables)}; tables: {', '.join(ws.model.tables)}")])
    refused = ws.engine.read_only_reason(name)
    if refused is not None:
        raise RejectedInput([Problem(name, refused)])
    table = ws.model.table(name)
    raw = read_raw(source, table, delete=delete)
    _ensure_seen_table(ws)
    keep, skipped = _keep_new_ids(ws, name, raw.change_ids)
    raw = raw.keep(keep)
    changes = _collapse(raw, _typed(raw, name, table), table)
    result = RecordsResult(table=name, skipped=skipped)
    non_key = [c for c in table.columns if c != table.key]
    staged_data = changes.rows.select(list(table.columns))
    for c, has in zip(non_key, changes.present, strict=True):
        staged_data = staged_data.append_column(f"{_HAS}{c}", has)
    staged_data = staged_data.append_column(_GROUP, pa.array(range(staged_data.num_rows), pa.int64()))
    if staged_data.num_rows == 0:
        return Applied(result, set(), None)
    _ensure_batches_table(ws)
    id_rows = [(cid, g) for g, ids in enumerate(changes.groups) for cid in ids]
    batch = uuid.uuid4().hex[:16]
    # names of this call's own: concurrent senders on PostgreSQL share the meta schema
    staged_name, ids_name = f"__segmenta_records_{batch}", f"__segmenta_record_ids_{batch}"
    staged = ws.engine.stage(staged_name, staged_data)
    staged_ids = (
        ws.engine.stage(
            ids_name,
            pa.table(
                {
                    "change_id": pa.array([c for c, _ in id_rows], pa.string()),
                    _GROUP: pa.array([g for _, g in id_rows], pa.int64()),
                }
            ),
        )
        if id_rows
        else None
    )
    link_columns = [table.key, *foreign_keys(ws.model, name)]
    versions = versions_table(ws, batch)
    at = clock.now()
    try:
        before = _existing_keys(ws, name, table.key, staged)
        # the columns the change sets, as the membership reads them: None (every column) when records come or go
        staged_keys = changes.rows.column(table.key).to_pylist()
        present = dict(zip(non_key, changes.present, strict=True))
        columns: set[str] | None = (
            None if delete or any(k not in before for k in staged_keys) else {c for c in non_key if pc.any(present[c]).as_py()}
        )
        statements: list[exp.Expr] = [*ws.engine.serialise("records")]  # one record change at a time per workspace
        source_rows = exp.select(*[_col(c) for c in staged_data.column_names]).from_(staged.copy())
        if staged_ids is not None:
            now = exp.cast(exp.Literal.string(at.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
            ids = (
                exp.select(exp.Literal.string(name), _col("change_id"), now, exp.Literal.string(batch))
                .from_(staged_ids.copy())
                .distinct()
            )
            insert = exp.insert(ids, _seen_table(ws), columns=["table_name", "change_id", "applied_at", "batch"])
            insert.set("conflict", exp.OnConflict(action=exp.var("DO NOTHING")))
            statements.append(insert)
            # A key applies when every change id of its rows was inserted by THIS transaction.
            ours = _seen_filter(ws, name).where(exp.EQ(this=_col("batch"), expression=exp.Literal.string(batch)))
            lost = (
                exp.select(_col(_GROUP))
                .from_(staged_ids.copy())
                .where(exp.Not(this=exp.In(this=_col("change_id"), query=ours.subquery())))
            )
            source_rows = source_rows.where(exp.Not(this=exp.In(this=_col(_GROUP), query=lost.subquery())))
        target = exp.Table(this=_ident(name))
        applied_keys = exp.select(_col(table.key)).from_(source_rows.subquery("d"))
        rows_now = (
            exp.select(*[_col(c) for c in link_columns])
            .from_(target.copy())
            .where(exp.In(this=_col(table.key), query=applied_keys.subquery()))
        )
        statements.append(exp.Create(this=versions.copy(), kind="TABLE", expression=rows_now.copy()))  # old versions
        if delete:
            statements.append(
                exp.Delete(this=target, where=exp.Where(this=exp.In(this=_col(table.key), query=applied_keys.subquery())))
            )
        else:
            statements.append(_merge(name, table, source_rows, non_key, staged_data))
        statements.append(exp.insert(rows_now, versions.copy()))  # new versions
        cause: dict[str, Any] = {"kind": TRIGGER, "table": name, "op": "delete" if delete else "upsert", "batch": batch}
        cids = [c for c, _ in id_rows]
        if cids:
            cause["change_ids"] = cids[:MAX_CAUSE_IDS]
            if len(cids) > MAX_CAUSE_IDS:
                cause["more_change_ids"] = len(cids) - MAX_CAUSE_IDS
        statements.append(
            exp.insert(
                exp.select(
                    exp.Literal.string(batch),
                    exp.Literal.string(name),
                    exp.Literal.string(json.dumps(sorted(columns))) if columns is not None else exp.Null(),
                    exp.Literal.string(json.dumps(cause)),
                    exp.cast(exp.Literal.string(at.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP),
                ),
                meta_table(ws, BATCHES_TABLE),
                columns=["batch", "table_name", "columns", "cause", "at"],
            )
        )
        ws.engine.execute(statements)
        applied = list(range(staged_data.num_rows))
        if staged_ids is not None:
            won = set(
                ws.engine.column(_seen_filter(ws, name).where(exp.EQ(this=_col("batch"), expression=exp.Literal.string(batch))))
            )
            applied = [g for g, ids in enumerate(changes.groups) if all(i in won for i in ids)]
            result.skipped += sum(len(ids) for g, ids in enumerate(changes.groups) if not all(i in won for i in ids))
        keys_applied = [changes.rows.column(table.key)[g].as_py() for g in applied]
        existing = sum(1 for k in keys_applied if k in before)
        if delete:
            result.deleted, result.unknown = existing, len(keys_applied) - existing
        else:
            result.updated, result.inserted = existing, len(keys_applied) - existing
        changed = columns if applied else set()
    finally:
        ws.engine.drop_staged(staged_name)
        if staged_ids is not None:
            ws.engine.drop_staged(ids_name)
    return Applied(result, changed, ws.engine.run(exp.select("*").from_(versions.copy())), batch)


def _lock(ws: Workspace) -> list[exp.Expr]:
    """What makes this workspace's record changes take turns (the engine's own way; none on DuckDB)."""
    return ws.engine.serialise("records")


def _merge(name: str, table: Table, source_rows: exp.Select, non_key: list[str], data: pa.Table) -> exp.Merge:
    """MERGE INTO table USING staged: update the columns each row gives, insert the new keys."""
    t, s = "t", "s"
    on = exp.EQ(this=_col(table.key, t), expression=_col(table.key, s))
    sets = [
        exp.EQ(
            this=_col(c),
            expression=exp.Case(ifs=[exp.If(this=_col(f"{_HAS}{c}", s), true=_col(c, s))], default=_col(c, t)),
        )
        for c in non_key
        if pc.any(data.column(f"{_HAS}{c}")).as_py()
    ]
    cols = list(table.columns)
    whens = []
    if sets:
        whens.append(exp.When(matched=True, source=False, then=exp.Update(expressions=sets)))
    whens.append(
        exp.When(
            matched=False,
            source=False,
            then=exp.Insert(
                this=exp.Tuple(expressions=[_col(c) for c in cols]), expression=exp.Tuple(expressions=[_col(c, s) for c in cols])
            ),
        )
    )
    return exp.Merge(
        this=exp.Table(this=_ident(name), alias=exp.TableAlias(this=_ident(t))),
        using=source_rows.subquery(s),
        on=on,
        whens=exp.Whens(expressions=whens),
    )


# -- the use cases ------------------------------------------------------------------------------


def upsert(segs: Segments, table: str, source: str | Path) -> RecordsResult:
    """Insert or update ``table``'s records from ``source``, then bring the live dynamic segments up to date for them."""
    return _change(segs, table, source, delete=False)


def delete(segs: Segments, table: str, source: str | Path) -> RecordsResult:
    """Delete ``table``'s records whose keys ``source`` gives, then bring the live dynamic segments up to date for them."""
    return _change(segs, table, source, delete=True)


def _change(segs: Segments, table: str, source: str | Path, *, delete: bool) -> RecordsResult:
    from segmenta.services.assignment import on_records_changed  # work assignment routes what changed (contract 6)
    from segmenta.services.incremental import apply_pending

    applied = apply_changes(segs.ws, table, source, delete=delete)
    if applied.batch is not None:
        applied.result.refreshed, failed = apply_pending(segs)
        applied.result.failed = [{"segment": n, "error": why} for n, why in failed]
    on_records_changed(segs, table, applied)
    return applied.result


def evaluate_for_keys(ws: Workspace, definition: Definition, keys: list[Any], *, as_of: dt.datetime) -> list[Any]:
    """The members of ``definition`` among ``keys`` (ascending), reading only what those keys reach."""
    audience = ws.model.table(definition.audience)
    key_type = arrow_schema(audience).field(audience.key).type
    name = f"__segmenta_restrict_keys_{uuid.uuid4().hex[:16]}"
    staged = ws.engine.stage(name, pa.table({"k": pa.array(keys, key_type)}))
    try:
        restrict = exp.select(_col("k")).from_(staged)
        query = compile_definition(definition, ws.model, as_of=as_of, segments=ws.segment_source, restrict_to=restrict)
        return ws.engine.column(query)
    finally:
        ws.engine.drop_staged(name)
