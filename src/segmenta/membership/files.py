"""Membership on Spark: versioned Parquet behind one commit file.

Per segment (by id), under ``<tables_path>/.segments/<id>/``:

- ``m-<uuid>/part-*.parquet``: one immutable members version per change, written by Spark
  (distributed; member keys never pass through the driver);
- ``e-<uuid>/part-*.parquet``: the membership events of one run (``offset, segment_id, key,
  change, refresh_id, at, version, cause``: the workspace's event log, as on SQL engines);
  parts of earlier versions (``h-<uuid>``, without offsets) are moved into the log by the
  next write;
- ``COMMIT``: a small JSON naming the current members version, the committed history
  parts, the size, and the last runs (id, version, time, size, counts). It is the ONE
  commit point: written to a temporary file, fsynced, then swapped in with ``os.replace``
  (atomic on POSIX).

A write runs the shared change query (:meth:`MembershipBase.delta_query`) once, in Spark,
as the run's new history part; the new members version is the old one minus the exited
plus the entered (:meth:`MembershipBase.members_after`); only then is ``COMMIT`` replaced.
A reader follows ``COMMIT`` and sees the old membership or the new, never a mix; a process
killed before the swap leaves the previous ``COMMIT`` (and so the previous membership and
history) in force, and the files it wrote are orphans that the next change removes.
Writers of one segment take an exclusive ``flock`` on ``.lock``; offsets are handed out from
``.segments/EVENTS`` under ``.segments/.events.lock``, held until the commit file is swapped in,
so offsets commit in their order (a killed write leaves a gap, never a reused offset).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.errors import EngineError
from segmenta.membership.base import EVENT_COLUMNS, MembershipBase, Write, counted, ident, key_data_type
from segmenta.types import ENTERED, EXITED, Changes, RunRecord

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    import pyarrow as pa

    class SparkEngine(Protocol):
        """What this store needs of its engine (``segmenta.engines.spark.SparkEngine`` has it), named
        here rather than imported: membership imports no concrete engine (``.importlinter``)."""

        dialect: str
        root: Path

        def sql(self, query: exp.Expr) -> str: ...

        def run(self, query: exp.Expr | str, *, timeout_s: float | None = None) -> pa.Table: ...

        @property
        def spark(self) -> Any: ...

        def frame(self, sql: str) -> Any: ...

        def register_parquet_view(self, name: str, locate: Callable[[], str], schema: str | None = None) -> None: ...

        def forget_view(self, name: str) -> None: ...


SEGMENTS_DIR = ".segments"
COMMIT = "COMMIT"
EVENTS_FILE = "EVENTS"
#: The event parts' schema (Spark SQL).
EVENT_SCHEMA = "log_offset BIGINT, segment_id BIGINT, key STRING, change STRING, refresh_id BIGINT, at TIMESTAMP_NTZ, version INT, cause STRING"
#: History parts are merged into one (in the same commit) once a segment has this many.
COMPACT_AFTER = 64
#: How many runs ``COMMIT`` remembers (enough to reconcile any run a crash left unfinished).
RUNS_KEPT = 200
#: Segment directories whose writer lock this thread holds (the lock is re-entrant per thread:
#: resolving a view inside a change may need to read the same segment).
_held = threading.local()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    java = [ln for ln in text.splitlines() if "Exception:" in ln]
    return (java[0] if java else (text.splitlines() or [type(exc).__name__])[0])[:2000]


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _record(raw: dict[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=int(raw["run"]),
        version=raw.get("version"),
        at=dt.datetime.fromisoformat(raw["at"]),
        size=int(raw["size"]),
        entered=int(raw["entered"]),
        exited=int(raw["exited"]),
    )


def _raw(record: RunRecord) -> dict[str, Any]:
    return {
        "run": record.run_id,
        "version": record.version,
        "at": record.at.isoformat(),
        "size": record.size,
        "entered": record.entered,
        "exited": record.exited,
    }


@dataclass(frozen=True)
class Committed:
    """What ``COMMIT`` says: the current members version, the history parts, size and the last runs."""

    members: str | None = None
    history: tuple[str, ...] = ()
    size: int = 0
    runs: tuple[RunRecord, ...] = ()

    @classmethod
    def read(cls, path: Path) -> Committed | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(
            members=raw["members"],
            history=tuple(raw["history"]),
            size=int(raw["size"]),
            runs=tuple(_record(r) for r in raw.get("runs") or ()),
        )

    def write(self, path: Path) -> None:
        """Replace ``path`` atomically (temp file, fsync, ``os.replace``, fsync of the directory)."""
        last = self.runs[-1] if self.runs else None
        data = {
            "members": self.members,
            "history": list(self.history),
            "size": self.size,
            "runs": [_raw(r) for r in self.runs],
            # read by earlier versions of segmenta
            "last_run": last.run_id if last else None,
            "last_changes": [last.entered, last.exited] if last else [0, 0],
        }
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class FileMembership(MembershipBase):
    """The stored membership of one segment on Spark: ``key`` is the audience's key column."""

    # Narrower than the base's Engine: the Spark engine, by what it offers (a Protocol, not the class).
    engine: SparkEngine  # type: ignore[assignment]

    # -- names and schemas -----------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.engine.root / SEGMENTS_DIR / str(self.segment_id)

    @property
    def view(self) -> str:
        return f"__segmenta_members_{self.segment_id}"

    @property
    def _spark_type(self) -> str:
        return key_data_type(self.key_type).sql(dialect=self.engine.dialect)

    @property
    def _members_schema(self) -> str:
        return f"{_quoted(self.key)} {self._spark_type}"

    @property
    def _old_history_schema(self) -> str:
        """The per-run parts of earlier versions (``h-``): typed key, no offsets."""
        return f"{self._members_schema}, change STRING, refresh_id BIGINT, at TIMESTAMP_NTZ, version INT"

    @property
    def members(self) -> exp.Table:
        """The members as a table reference: a temp view over the version committed when the query runs."""
        self.engine.register_parquet_view(self.view, self._locate, self._members_schema)
        return exp.Table(this=ident(self.view))

    def _current(self, alias: str) -> exp.Expr:
        # Before the first commit there is nothing to read (and no empty version is written for it).
        return super()._current(alias) if self.exists() else self._empty(alias)

    def _locate(self) -> str:
        state = self._state() or self._ensure()
        return str(self.dir / str(state.members))

    def _state(self) -> Committed | None:
        return Committed.read(self.dir / COMMIT)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One writer per segment at a time (across processes and threads on this file system)."""
        held: set[Path] = _held.__dict__.setdefault("dirs", set())
        if self.dir in held:
            yield
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            held.add(self.dir)
            try:
                yield
            finally:
                held.discard(self.dir)
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read(self, version: str | None) -> Any:
        spark = self.engine.spark
        if version is None:
            return spark.createDataFrame([], self._members_schema)
        return spark.read.schema(self._members_schema).parquet(str(self.dir / version))

    def _history_frame(self, parts: tuple[str, ...]) -> Any:
        """The events of ``parts``, the key typed like the audience's (as the history is read)."""
        from pyspark.sql import functions as F

        spark = self.engine.spark
        events = [p for p in parts if p.startswith("e-")]
        frame = (
            spark.read.schema(EVENT_SCHEMA).parquet(*[str(self.dir / p) for p in events])
            if events
            else spark.createDataFrame([], EVENT_SCHEMA)
        )
        return frame.withColumn(self.key, F.col("key").cast(self._spark_type))

    def _old_parts_as_events(self, parts: tuple[str, ...], base: int) -> Any:
        """Parts of earlier versions (``h-``) as events numbered from ``base + 1``, oldest first."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        old = self.engine.spark.read.schema(self._old_history_schema).parquet(*[str(self.dir / p) for p in parts])
        order = Window.orderBy("refresh_id", "at", "change", _quoted(self.key))
        return old.select(
            (F.lit(base) + F.row_number().over(order)).cast("bigint").alias("log_offset"),
            F.lit(self.segment_id).cast("bigint").alias("segment_id"),
            F.col(_quoted(self.key)).cast("string").alias("key"),
            "change",
            "refresh_id",
            "at",
            "version",
            F.lit(json.dumps({"kind": "history"})).alias("cause"),
        )

    # -- writing ---------------------------------------------------------------------------

    def ensure(self) -> None:
        """Commit an empty membership if the segment has none yet (an empty static list)."""
        self._ensure()

    def _ensure(self) -> Committed:
        with self._lock():
            state = self._state()
            if state is not None:
                return state
            version = f"m-{uuid.uuid4().hex}"
            self._read(None).write.parquet(str(self.dir / version))
            state = Committed(members=version)
            state.write(self.dir / COMMIT)
            return state

    def ensure_statements(self) -> list[exp.Expr]:
        """No SQL to run on Spark: :meth:`ensure` writes the files (kept for the SQL surface)."""
        return []

    def _write(self, w: Write) -> Changes:
        """Write the run's event part and the new members version (on Spark), then commit both with one ``os.replace``."""
        with self._lock(), _event_offsets(self.engine.root) as offsets:
            state = self._state() or Committed()
            members_version, part = f"m-{uuid.uuid4().hex}", f"e-{uuid.uuid4().hex}"
            old_parts = tuple(p for p in state.history if p.startswith("h-"))
            moved: tuple[str, ...] = ()
            if old_parts:  # an earlier version's history joins the log first
                moved = (f"e-{uuid.uuid4().hex}",)
                frame = self._old_parts_as_events(old_parts, offsets.last)
                frame.write.parquet(str(self.dir / moved[0]))
                offsets.last += frame.count()
            delta_view = f"__segmenta_delta_{self.segment_id}"
            delta_part = f"d-{uuid.uuid4().hex}"
            delta_q = self.delta_query(w.op, w.keys, within=w.within)
            try:  # the evaluation runs here (a Spark job): its failure is the engine's, reported with the query
                self.engine.frame(self.engine.sql(delta_q)).write.parquet(str(self.dir / delta_part))
            except Exception as exc:
                shutil.rmtree(self.dir / delta_part, ignore_errors=True)
                raise EngineError(f"Spark failed to evaluate the membership: {_first_line(exc)}") from exc
            self.engine.register_parquet_view(
                delta_view, lambda: str(self.dir / delta_part), f"{self._members_schema}, change STRING"
            )
            try:
                delta = exp.Table(this=ident(delta_view))
                entered, exited = counted(self.engine.run(self.count_changes(delta)))
                rows = self.event_rows(
                    delta,
                    run_id=w.run_id,
                    at=w.at,
                    version=w.version,
                    cause=w.cause,
                    first_offset=exp.Literal.number(offsets.last),
                )
                self.engine.frame(self.engine.sql(rows)).write.parquet(str(self.dir / part))
                new_members = self.engine.frame(self.engine.sql(self.members_after(delta)))
                new_members.write.parquet(str(self.dir / members_version))
            finally:
                self.engine.forget_view(delta_view)
                shutil.rmtree(self.dir / delta_part, ignore_errors=True)
            offsets.last += entered + exited
            record = RunRecord(w.run_id, w.version, w.at, state.size + entered - exited, entered, exited)
            if w.before_commit is not None:
                w.before_commit()  # tests kill the process here: files written, nothing committed
            kept = tuple(p for p in state.history if not p.startswith("h-"))
            history = self._compacted((*kept, *moved, part))
            committed = Committed(
                members=members_version,
                history=history,
                size=record.size,
                runs=(*state.runs, record)[-RUNS_KEPT:],
            )
            offsets.save()  # before the commit: a crash between the two leaves a gap, never a reused offset
            committed.write(self.dir / COMMIT)
            self._clean(keep={members_version, *history}, previous=state.members)
            return Changes(entered, exited, record.size)

    def _compacted(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        """The history parts, merged into one new part once there are :data:`COMPACT_AFTER` of them."""
        if len(parts) < COMPACT_AFTER:
            return parts
        merged = f"e-{uuid.uuid4().hex}"
        frame = self.engine.spark.read.schema(EVENT_SCHEMA).parquet(*[str(self.dir / p) for p in parts])
        frame.coalesce(4).write.parquet(str(self.dir / merged))
        return (merged,)

    def _clean(self, *, keep: set[str], previous: str | None) -> None:
        """Remove what no commit names: orphans of killed changes and old versions.

        The members version just replaced stays (a reader may be scanning it); it goes next time.
        """
        for entry in self.dir.iterdir():
            if entry.name[:2] in ("m-", "h-", "e-", "d-") and entry.name not in keep and entry.name != previous:
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith(f".{COMMIT}."):  # a commit file never swapped in
                entry.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.dir / COMMIT).is_file()

    def committed(self, run_id: int) -> RunRecord | None:
        state = self._state()
        return next((r for r in reversed(state.runs) if r.run_id == run_id), None) if state else None

    def latest(self) -> RunRecord | None:
        state = self._state()
        return state.runs[-1] if state and state.runs else None

    def keys(self) -> list[Any]:
        """The members' keys, ascending (empty if never evaluated)."""
        state = self._state()
        if state is None:
            return []
        keys: list[Any] = self._read(state.members).orderBy(_quoted(self.key)).toArrow().column(0).to_pylist()
        return keys

    def size(self) -> int:
        state = self._state()
        return state.size if state else 0

    def _run_history(self, run_id: int) -> Any:
        from pyspark.sql import functions as F

        state = self._state()
        if state is None:
            return None
        return self._history_frame(state.history).where(F.col("refresh_id") == run_id)

    def changes(self, run_id: int) -> tuple[int, int]:
        """(entered, exited) counts of one committed change."""
        record = self.committed(run_id)
        if record is not None:
            return record.entered, record.exited
        frame = self._run_history(run_id)
        if frame is None:
            return 0, 0
        counts = {r["change"]: int(r["count"]) for r in frame.groupBy("change").count().collect()}
        return counts.get(ENTERED, 0), counts.get(EXITED, 0)

    def delta(self, run_id: int, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The keys that entered and exited in run ``run_id``: batches of (key, change), entered first, by key."""
        frame = self._run_history(run_id)
        if frame is None:
            return iter(())
        ordered = frame.select(_quoted(self.key), "change").orderBy("log_offset")
        return iter(ordered.toArrow().to_batches(max_chunksize=batch_size))

    def record_history(self, key: Any) -> list[dict[str, Any]]:
        """Every entry and exit of one record, oldest first."""
        from pyspark.sql import functions as F

        state = self._state()
        if state is None:
            return []
        frame = self._history_frame(state.history).where(F.col("key") == F.lit(str(key)))
        rows: list[dict[str, Any]] = (
            frame.select("at", "change", "version", "refresh_id", "log_offset", "cause")
            .orderBy("log_offset")
            .toArrow()
            .to_pylist()
        )
        for r in rows:
            r["cause"] = json.loads(r["cause"]) if r["cause"] else None
            r["offset"] = r.pop("log_offset")
        return rows

    def contains(self, key: Any) -> bool:
        from pyspark.sql import functions as F

        state = self._state()
        if state is None:
            return False
        return bool(self._read(state.members).where(F.col(_quoted(self.key)) == F.lit(key)).limit(1).count())


class _Offsets:
    """The last event offset handed out in a workspace on Spark (``.segments/EVENTS``), while its lock is held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.last = int(json.loads(path.read_text(encoding="utf-8"))["last"])
        except FileNotFoundError:
            self.last = 0

    def save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"last": self.last}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


@contextmanager
def _event_offsets(root: Path) -> Iterator[_Offsets]:
    """The workspace's event offsets, under an exclusive ``flock`` held until the caller's commit."""
    base = root / SEGMENTS_DIR
    base.mkdir(parents=True, exist_ok=True)
    held: set[Path] = _held.__dict__.setdefault("dirs", set())
    lock = base / ".events.lock"
    if lock in held:  # a write inside a write (re-entrant per thread)
        yield _Offsets(base / EVENTS_FILE)
        return
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        held.add(lock)
        try:
            yield _Offsets(base / EVENTS_FILE)
        finally:
            held.discard(lock)
            fcntl.flock(fh, fcntl.LOCK_UN)


class FileEventLog:
    """The event log of a workspace on Spark: the committed event parts of every segment, in offset order."""

    def __init__(self, engine: SparkEngine) -> None:
        self.engine = engine

    def last(self) -> int:
        return _Offsets(self.engine.root / SEGMENTS_DIR / EVENTS_FILE).last

    def read(self, *, after: int, segment_ids: list[int] | None, limit: int) -> pa.Table:
        import pyarrow as pa
        from pyspark.sql import functions as F

        base = self.engine.root / SEGMENTS_DIR
        paths: list[str] = []
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if not d.name.isdigit() or (segment_ids is not None and int(d.name) not in segment_ids):
                    continue
                state = Committed.read(d / COMMIT)
                if state is not None:
                    paths += [str(d / p) for p in state.history if p.startswith("e-")]
        if not paths:
            types = {"BIGINT": pa.int64(), "VARCHAR": pa.string(), "TIMESTAMP": pa.timestamp("us"), "INTEGER": pa.int32()}
            return pa.table({c: pa.array([], types[t]) for c, t in EVENT_COLUMNS})
        frame = self.engine.spark.read.schema(EVENT_SCHEMA).parquet(*paths).where(F.col("log_offset") > after)
        table: pa.Table = frame.orderBy("log_offset").limit(limit).toArrow()
        return table


__all__ = ["COMMIT", "EXITED", "SEGMENTS_DIR", "Committed", "FileEventLog", "FileMembership"]
