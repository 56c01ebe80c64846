"""Membership on Spark: versioned Parquet behind one commit file.

Per segment (by id), under ``<tables_path>/.segments/<id>/``:

- ``m-<uuid>/part-*.parquet``: one immutable members version per change, written by Spark
  (distributed; member keys never pass through the driver);
- ``h-<uuid>/part-*.parquet``: the entries and exits of one run
  (``<key>, change, refresh_id, at, version``);
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
Writers of one segment take an exclusive ``flock`` on ``.lock``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.membership.base import MembershipBase, counted, ident, key_data_type
from segmenta.types import ENTERED, EXITED, Changes, RunRecord

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from segmenta.engines.base import Engine

    class SparkEngine(Engine):
        """What this store needs of its engine (``segmenta.engines.spark.SparkEngine`` has it), named
        here rather than imported: membership imports no concrete engine (``.importlinter``)."""

        root: Path

        @property
        def spark(self) -> Any: ...

        def frame(self, sql: str) -> Any: ...

        def register_parquet_view(self, name: str, locate: Callable[[], str], schema: str | None = None) -> None: ...

        def forget_view(self, name: str) -> None: ...


SEGMENTS_DIR = ".segments"
COMMIT = "COMMIT"
#: History parts are merged into one (in the same commit) once a segment has this many.
COMPACT_AFTER = 64
#: How many runs ``COMMIT`` remembers (enough to reconcile any run a crash left unfinished).
RUNS_KEPT = 200
#: Segment directories whose writer lock this thread holds (the lock is re-entrant per thread:
#: resolving a view inside a change may need to read the same segment).
_held = threading.local()


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

    engine: SparkEngine

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
    def _history_schema(self) -> str:
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
        spark = self.engine.spark
        if not parts:
            return spark.createDataFrame([], self._history_schema)
        return spark.read.schema(self._history_schema).parquet(*[str(self.dir / p) for p in parts])

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

    def _write(
        self,
        op: str,
        keys: exp.Query,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None,
    ) -> Changes:
        """Write the run's history part and the new members version (on Spark), then commit both with one ``os.replace``."""
        with self._lock():
            state = self._state() or Committed()
            members_version, part = f"m-{uuid.uuid4().hex}", f"h-{uuid.uuid4().hex}"
            rows = self.history_rows(self.delta_query(op, keys), run_id=run_id, at=at, version=version)
            self.engine.frame(self.engine.sql(rows)).write.parquet(str(self.dir / part))
            delta_view = f"__segmenta_delta_{self.segment_id}"
            self.engine.register_parquet_view(delta_view, lambda: str(self.dir / part), self._history_schema)
            try:
                delta = exp.Table(this=ident(delta_view))
                entered, exited = counted(self.engine.run(self.count_changes(delta)))
                new_members = self.engine.frame(self.engine.sql(self.members_after(delta)))
                new_members.write.parquet(str(self.dir / members_version))
            finally:
                self.engine.forget_view(delta_view)
            record = RunRecord(run_id, version, at, state.size + entered - exited, entered, exited)
            if before_commit is not None:
                before_commit()  # tests kill the process here: files written, nothing committed
            history = self._compacted((*state.history, part))
            committed = Committed(
                members=members_version,
                history=history,
                size=record.size,
                runs=(*state.runs, record)[-RUNS_KEPT:],
            )
            committed.write(self.dir / COMMIT)
            self._clean(keep={members_version, *history}, previous=state.members)
            return Changes(entered, exited, record.size)

    def _compacted(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        """The history parts, merged into one new part once there are :data:`COMPACT_AFTER` of them."""
        if len(parts) < COMPACT_AFTER:
            return parts
        merged = f"h-{uuid.uuid4().hex}"
        self._history_frame(parts).coalesce(4).write.parquet(str(self.dir / merged))
        return (merged,)

    def _clean(self, *, keep: set[str], previous: str | None) -> None:
        """Remove what no commit names: orphans of killed changes and old versions.

        The members version just replaced stays (a reader may be scanning it); it goes next time.
        """
        for entry in self.dir.iterdir():
            if entry.name[:2] in ("m-", "h-") and entry.name not in keep and entry.name != previous:
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
        ordered = frame.select(_quoted(self.key), "change").orderBy("change", _quoted(self.key))
        return iter(ordered.toArrow().to_batches(max_chunksize=batch_size))

    def record_history(self, key: Any) -> list[dict[str, Any]]:
        """Every entry and exit of one record, oldest first."""
        from pyspark.sql import functions as F

        state = self._state()
        if state is None:
            return []
        frame = self._history_frame(state.history).where(F.col(_quoted(self.key)) == F.lit(key))
        rows: list[dict[str, Any]] = (
            frame.select("at", "change", "version", "refresh_id").orderBy("refresh_id", "at").toArrow().to_pylist()
        )
        return rows

    def contains(self, key: Any) -> bool:
        from pyspark.sql import functions as F

        state = self._state()
        if state is None:
            return False
        return bool(self._read(state.members).where(F.col(_quoted(self.key)) == F.lit(key)).limit(1).count())


__all__ = ["COMMIT", "EXITED", "SEGMENTS_DIR", "Committed", "FileMembership"]
