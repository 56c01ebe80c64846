"""Record changes in (contract 5.2): upsert and delete records of a model table, all or nothing.

A file (.csv, .json array, .ndjson, or NDJSON on stdin) is checked whole with the same
checks as ``load`` (``services.loading``): a bad row rejects the file, with its row and
column named, and nothing is applied. The change is then applied in ONE engine
transaction, as sqlglot trees rendered for the engine's dialect: a ``MERGE`` (update the
columns a row gives, insert new keys) or a ``DELETE``, and the rows' ``_change_id`` s into
a table of seen ids in the engine's own schema, so a re-sent change is skipped.

Membership, for now: after the change, the live dynamic segments whose reads
(:mod:`segmenta.compiler.reads`) include a changed column and which some audience record
reaches through a changed row (:mod:`segmenta.compiler.affected`), and the live segments
that read a refreshed segment whose members changed through ``in_segment``, are
REFRESHED IN FULL through the lifecycle service.
That is the temporary membership path until the membership store has a partial-write
API; it is not incremental. :func:`evaluate_for_keys` (restricted evaluation) and
:mod:`segmenta.compiler.affected` are the pieces the incremental path will use.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from segmenta import clock
from segmenta.compiler.affected import KEY, affected_keys, foreign_keys
from segmenta.compiler.compile import compile_definition
from segmenta.compiler.reads import segment_reads
from segmenta.errors import DataError, NotFound, Problem, RejectedInput
from segmenta.model.schema import Table, hint
from segmenta.model.validate import parse_definition
from segmenta.services.loading import _convert, _read_csv_text, arrow_schema

if TYPE_CHECKING:
    from segmenta.model.definition import Definition
    from segmenta.services.segments import Segments
    from segmenta.workspace import Workspace

CHANGE_ID = "_change_id"
#: The engine table (in the engine's meta schema) of change ids already applied.
SEEN_TABLE = "record_changes"
#: The trigger of the refresh runs a record change starts.
TRIGGER = "records"
_HAS = "__has_"


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

    def summary(self) -> str:
        return (
            f"{self.table}: {self.inserted} inserted, {self.updated} updated, {self.deleted} deleted, "
            f"{self.skipped} skipped duplicates, {self.unknown} unknown keys; "
            f"{len(self.refreshed)} segments refreshed"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading a change file ----------------------------------------------------------------------


@dataclass
class _Changes:
    rows: pa.Table  # typed, the model's types; only the table's columns
    present: list[pa.Array]  # per non-key column of the table: whether each row gives it
    change_ids: list[str | None]


def read_changes(source: str | Path, name: str, table: Table, *, delete: bool = False) -> _Changes:
    """The rows of a change file, typed and checked like ``load``; raises :class:`DataError` naming row and column."""
    if str(source) == "-":
        return _from_objects(_ndjson(sys.stdin.read(), "stdin"), "stdin", name, table, delete=delete)
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
        typed = _convert(raw, header, name, table, path, text=True)
        present = [pa.array([c in header] * typed.num_rows, pa.bool_()) for c in table.columns if c != table.key]
        return _Changes(typed, present, ids)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            [Problem(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8")]
        ) from None
    if suffix == ".ndjson":
        return _from_objects(_ndjson(text, path.name), path.name, name, table, delete=delete)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError([Problem(f"{path.name}: line {exc.lineno}", f"not valid JSON: {exc.msg}")]) from None
        if not isinstance(data, list):
            raise DataError([Problem(path.name, "a .json change file is an array of objects, one per record")])
        return _from_objects([(i + 1, f"row {i + 1}", v) for i, v in enumerate(data)], path.name, name, table, delete=delete)
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


def _from_objects(items: list[tuple[int, str, Any]], label: str, name: str, table: Table, *, delete: bool) -> _Changes:
    if not items:  # an empty array or stream: nothing to change
        empty = arrow_schema(table).empty_table()
        return _Changes(empty, [pa.array([], pa.bool_()) for c in table.columns if c != table.key], [])
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
    raw = pa.table({h: pa.array(v, pa.string()) for h, v in columns.items()})
    fake = Path(label)
    try:
        typed = _convert(raw, header, name, table, fake, text=True)
    except DataError as exc:
        wheres = {i: where for i, where, _ in items}
        raise DataError([_relocate(p, label, wheres) for p in exc.problems]) from None
    present = [
        pa.array(given[c] if c in given else [False] * typed.num_rows, pa.bool_()) for c in table.columns if c != table.key
    ]
    return _Changes(typed, present, ids)


_ROW = re.compile(r"data row (\d+) \(line \d+\)")


def _relocate(problem: Problem, label: str, wheres: dict[int, str]) -> Problem:
    """loading's 'data row N (line N+1)' (CSV lines) as the JSON row (and NDJSON line)."""
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
    schema = exp.Create(this=exp.Table(this=_ident(ws.engine.meta_schema)), kind="SCHEMA", exists=True)
    columns = [
        exp.ColumnDef(this=_ident("change_id"), kind=exp.DataType.build("TEXT")),
        exp.ColumnDef(this=_ident("table_name"), kind=exp.DataType.build("TEXT")),
        exp.ColumnDef(this=_ident("applied_at"), kind=exp.DataType.build("TIMESTAMP")),
    ]
    create = exp.Create(this=exp.Schema(this=_seen_table(ws), expressions=columns), kind="TABLE", exists=True)
    ws.engine.execute([schema, create])


def _keep_new_ids(ws: Workspace, ids: list[str | None]) -> tuple[list[bool], int]:
    """Which rows to apply: those without a change id, or with one neither applied before nor earlier in the file."""
    wanted = sorted({i for i in ids if i is not None})
    seen: set[str] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        q = (
            exp.select(_col("change_id"))
            .from_(_seen_table(ws))
            .where(exp.In(this=_col("change_id"), expressions=[exp.Literal.string(i) for i in chunk]))
        )
        seen.update(ws.engine.column(q))
    keep = []
    for i in ids:
        if i is None:
            keep.append(True)
        elif i in seen:
            keep.append(False)
        else:
            keep.append(True)
            seen.add(i)
    return keep, keep.count(False)


def _existing(ws: Workspace, name: str, key: str, staged: exp.Table) -> int:
    q = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(exp.Table(this=_ident(name)))
        .where(exp.In(this=_col(key), query=exp.select(_col(key)).from_(staged.copy()).subquery(copy=False)))
    )
    return int(ws.engine.column(q)[0])


@dataclass
class Applied:
    """One applied change file: its counts, the columns it set (None: every column) and the changed rows' versions."""

    result: RecordsResult
    changed: set[str] | None
    versions: pa.Table | None  # key and foreign keys of the changed rows, before and after (compiler.affected's input)


def apply_changes(ws: Workspace, name: str, source: str | Path, *, delete: bool) -> Applied:
    """Check and apply one change file in one transaction."""
    if name not in ws.model.tables:
        raise NotFound([Problem(name, f"unknown table{hint(name, ws.model.tables)}; tables: {', '.join(ws.model.tables)}")])
    refused = ws.engine.read_only_reason(name)
    if refused is not None:
        raise RejectedInput([Problem(name, refused)])
    table = ws.model.table(name)
    changes = read_changes(source, name, table, delete=delete)
    result = RecordsResult(table=name)
    _ensure_seen_table(ws)
    keep, result.skipped = _keep_new_ids(ws, changes.change_ids)
    mask = pa.array(keep, pa.bool_())
    non_key = [c for c in table.columns if c != table.key]
    staged_data = changes.rows.select(list(table.columns))
    for c, has in zip(non_key, changes.present, strict=True):
        staged_data = staged_data.append_column(f"{_HAS}{c}", has)
    staged_data = staged_data.append_column(CHANGE_ID, pa.array(changes.change_ids, pa.string())).filter(mask)
    if staged_data.num_rows == 0:
        return Applied(result, set(), None)
    staged_name = f"__segmenta_records_{name}"
    staged = ws.engine.stage(staged_name, staged_data)
    link_columns = [table.key, *foreign_keys(ws.model, name)]

    def versions_now() -> pa.Table:
        keys = exp.select(_col(table.key)).from_(staged.copy()).subquery()
        q = exp.select(*[_col(c) for c in link_columns]).from_(exp.Table(this=_ident(name)))
        return ws.engine.run(q.where(exp.In(this=_col(table.key), query=keys)))

    try:
        old = versions_now()
        existing = _existing(ws, name, table.key, staged)
        target = exp.Table(this=_ident(name))
        statements: list[exp.Expr] = []
        changed: set[str] | None
        if delete:
            keys = exp.select(_col(table.key)).from_(staged.copy())
            statements.append(exp.Delete(this=target, where=exp.Where(this=exp.In(this=_col(table.key), query=keys.subquery()))))
            result.deleted, result.unknown = existing, staged_data.num_rows - existing
            changed = None if existing else set()
        else:
            statements.append(_merge(name, table, staged, non_key, staged_data))
            result.updated, result.inserted = existing, staged_data.num_rows - existing
            given = {c for c in non_key if pc.any(staged_data.column(f"{_HAS}{c}")).as_py()}
            changed = None if result.inserted else given
        now = exp.cast(exp.Literal.string(clock.now().isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
        ids = (
            exp.select(_col(CHANGE_ID), exp.Literal.string(name), now)
            .from_(staged.copy())
            .where(exp.Not(this=exp.Is(this=_col(CHANGE_ID), expression=exp.Null())))
        )
        statements.append(exp.insert(ids, _seen_table(ws), columns=["change_id", "table_name", "applied_at"]))
        ws.engine.execute(statements)
        new = versions_now()
    finally:
        ws.engine.drop_staged(staged_name)
    return Applied(result, changed, pa.concat_tables([old, new.cast(old.schema)]))


def _merge(name: str, table: Table, staged: exp.Table, non_key: list[str], data: pa.Table) -> exp.Merge:
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
    source = exp.select(*[_col(c) for c in data.column_names]).from_(staged.copy()).subquery(s)
    return exp.Merge(
        this=exp.Table(this=_ident(name), alias=exp.TableAlias(this=_ident(t))),
        using=source,
        on=on,
        whens=exp.Whens(expressions=whens),
    )


# -- the use cases ------------------------------------------------------------------------------


def upsert(segs: Segments, table: str, source: str | Path) -> RecordsResult:
    """Insert or update ``table``'s records from ``source``, then refresh the live dynamic segments that read a changed column."""
    return _change(segs, table, source, delete=False)


def delete(segs: Segments, table: str, source: str | Path) -> RecordsResult:
    """Delete ``table``'s records whose keys ``source`` gives, then refresh the live dynamic segments that read the table."""
    return _change(segs, table, source, delete=True)


def _change(segs: Segments, table: str, source: str | Path, *, delete: bool) -> RecordsResult:
    applied = apply_changes(segs.ws, table, source, delete=delete)
    if applied.versions is not None and (applied.changed is None or applied.changed):
        applied.result.refreshed = refresh_touched(segs, table, applied.changed, applied.versions)
    return applied.result


def live_dynamic(segs: Segments) -> dict[str, Definition]:
    """The live dynamic segments, by name, with their live definitions."""
    from sqlalchemy import select

    from segmenta.services.states import Kind, Status
    from segmenta.store.models import Segment, SegmentVersion

    out: dict[str, Definition] = {}
    with segs.store.session() as s:
        rows = s.execute(
            select(Segment.name, SegmentVersion.definition)
            .join(SegmentVersion, (SegmentVersion.segment_id == Segment.id) & (SegmentVersion.version == Segment.live_version))
            .where(Segment.status == Status.LIVE, Segment.kind == Kind.DYNAMIC, Segment.deleted_at.is_(None))
        ).all()
    for seg_name, raw in rows:
        out[seg_name] = parse_definition(raw, segs.ws.model)
    return out


def refresh_touched(segs: Segments, table: str, changed: set[str] | None, versions: pa.Table) -> list[str]:
    """Refresh (in full) the live dynamic segments a change of ``table`` can affect; returns their names in order.

    A segment is refreshed when its reads include a changed column (``changed`` None: every
    column, records inserted or deleted) and some audience record reaches a changed row
    (:func:`segmenta.compiler.affected.affected_keys` over the rows' old and new
    versions), or when a segment it reads through ``in_segment`` was refreshed and its
    members changed. Segments are taken in dependency order, each once.
    """
    model = segs.ws.model
    live = live_dynamic(segs)
    reads = {n: segment_reads(d, model) for n, d in live.items()}
    columns = set(model.table(table).columns) if changed is None else changed
    candidates = {n for n, r in reads.items() if r.touches(table, columns)}
    direct: set[str] = set()
    if candidates:
        name = "__segmenta_changed_versions"
        staged = segs.ws.engine.stage(name, versions)
        try:
            rows = exp.select(*[_col(c) for c in versions.column_names]).from_(staged)
            for n in sorted(candidates):
                q = affected_keys(model, reads[n], table, rows, columns=changed)
                if q is None:
                    continue
                first = exp.select(_col(KEY)).from_(q.subquery("a"))
                audience = live[n].audience
                if audience != table:  # a key no audience record has is no member before or after
                    key = model.table(audience).key
                    first = first.where(
                        exp.In(this=_col(KEY), query=exp.select(_col(key)).from_(exp.Table(this=_ident(audience))).subquery())
                    )
                if segs.ws.engine.column(first.limit(1)):
                    direct.add(n)
        finally:
            segs.ws.engine.drop_staged(name)
    moved: set[str] = set()  # refreshed with members entering or exiting
    done: list[str] = []
    pending = set(live)
    while pending:
        ready = sorted(n for n in pending if reads[n].segments.isdisjoint(pending - {n}))
        for n in ready or sorted(pending):  # a cycle cannot be published; the rest in name order
            pending.discard(n)
            if n in direct or not reads[n].segments.isdisjoint(moved):
                outcome = segs.refresh(n, trigger=TRIGGER)
                done.append(n)
                if outcome.entered or outcome.exited:
                    moved.add(n)
    return done


def evaluate_for_keys(ws: Workspace, definition: Definition, keys: list[Any], *, as_of: dt.datetime) -> list[Any]:
    """The members of ``definition`` among ``keys`` (ascending), reading only what those keys reach."""
    audience = ws.model.table(definition.audience)
    key_type = arrow_schema(audience).field(audience.key).type
    name = "__segmenta_restrict_keys"
    staged = ws.engine.stage(name, pa.table({"k": pa.array(keys, key_type)}))
    try:
        restrict = exp.select(_col("k")).from_(staged)
        query = compile_definition(definition, ws.model, as_of=as_of, segments=ws.segment_source, restrict_to=restrict)
        return ws.engine.column(query)
    finally:
        ws.engine.drop_staged(name)
