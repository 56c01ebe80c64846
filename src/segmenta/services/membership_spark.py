"""Membership and history of saved segments on Spark: versioned Parquet behind one commit file.

The Spark twin of :class:`segmenta.services.membership_store.Membership` (same public
surface, chosen by :func:`segmenta.services.membership_store.membership_for`). Per segment
(by id), under ``<tables_path>/.segments/<id>/``:

- ``m-<uuid>/part-*.parquet``: one immutable members version per change, written by Spark
  (distributed; member keys never pass through the driver);
- ``h-<uuid>/part-*.parquet``: the entries and exits of one refresh
  (``<key>, change, refresh_id, at, version``);
- ``COMMIT``: a small JSON naming the current members version, the committed history
  parts, the size and the last run's counts. It is the ONE commit point: written to a
  temporary file, fsynced, then swapped in with ``os.replace`` (atomic on POSIX).

A change writes the new members version, computes ``entered = new EXCEPT old`` and
``exited = old EXCEPT new`` in Spark, writes them as a new history part, and only then
replaces ``COMMIT``. A reader follows ``COMMIT`` and sees the old membership or the new,
never a mix; a process killed before the swap leaves the previous ``COMMIT`` (and so the
previous membership and history) in force, and the files it wrote are orphans that the
next change removes. Writers of one segment take an exclusive ``flock`` on ``.lock``.
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
from typing import Any

from sqlglot import exp

from segmenta.engines.duckdb import SQL_TYPES
from segmenta.engines.spark import SparkEngine
from segmenta.model.schema import ColumnType

SEGMENTS_DIR = ".segments"
COMMIT = "COMMIT"
ENTERED = "entered"
EXITED = "exited"
#: History parts are merged into one (in the same commit) once a segment has this many.
COMPACT_AFTER = 64
#: Segment directories whose writer lock this thread holds (the lock is re-entrant per thread:
#: resolving a view inside a change may need to read the same segment).
_held = threading.local()


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class Committed:
    """What ``COMMIT`` says: the current members version, the history parts, size and last run's counts."""

    members: str | None = None
    history: tuple[str, ...] = ()
    size: int = 0
    last_run: int | None = None
    last_changes: tuple[int, int] = (0, 0)

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
            last_run=raw.get("last_run"),
            last_changes=tuple(raw.get("last_changes") or (0, 0)),  # type: ignore[arg-type]
        )

    def write(self, path: Path) -> None:
        """Replace ``path`` atomically (temp file, fsync, ``os.replace``, fsync of the directory)."""
        data = {
            "members": self.members,
            "history": list(self.history),
            "size": self.size,
            "last_run": self.last_run,
            "last_changes": list(self.last_changes),
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
class SparkMembership:
    """The stored membership of one segment on Spark: ``key`` is the audience's key column."""

    engine: SparkEngine
    segment_id: int
    key: str
    key_type: ColumnType

    # -- names and schemas -----------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.engine.root / SEGMENTS_DIR / str(self.segment_id)

    @property
    def view(self) -> str:
        return f"__segmenta_members_{self.segment_id}"

    @property
    def _spark_type(self) -> str:
        return exp.DataType.build(SQL_TYPES[self.key_type], dialect="duckdb").sql(dialect="spark")

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
        return exp.Table(this=exp.to_identifier(self.view, quoted=True))

    def _locate(self) -> str:
        state = self._state() or self.ensure()
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

    def _read(self, version: str | None, schema: str | None = None) -> Any:
        spark = self.engine.spark
        if version is None:
            return spark.createDataFrame([], schema or self._members_schema)
        return spark.read.schema(schema or self._members_schema).parquet(str(self.dir / version))

    def _history_frame(self, parts: tuple[str, ...]) -> Any:
        spark = self.engine.spark
        if not parts:
            return spark.createDataFrame([], self._history_schema)
        return spark.read.schema(self._history_schema).parquet(*[str(self.dir / p) for p in parts])

    # -- writing ---------------------------------------------------------------------------

    def ensure(self) -> Committed:
        """Commit an empty membership if the segment has none yet (an empty static list)."""
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
        """No SQL to run on Spark: :meth:`ensure` writes the files (kept for the DuckDB surface)."""
        return []

    def replace(
        self,
        query: exp.Query,
        *,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """Replace the members with ``query``'s keys (evaluated once, on Spark), recording who entered and exited."""
        query.set("order", None)
        self._apply(lambda _old: self.engine.frame(self.engine.sql(query)), run_id, at, version, before_commit)

    def add(self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None) -> None:
        """Add ``keys`` (a query of one key column, run on Spark); those not yet members are recorded as entered."""
        self._apply(lambda old: old.unionByName(self._keys_frame(keys)).distinct(), run_id, at, version, None)

    def remove(self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None) -> None:
        """Remove ``keys`` from the members; those that were members are recorded as exited."""
        self._apply(lambda old: old.subtract(self._keys_frame(keys)), run_id, at, version, None)

    def _keys_frame(self, keys: exp.Query) -> Any:
        from pyspark.sql import functions as F

        frame = self.engine.frame(self.engine.sql(keys))
        key = F.col(_quoted(frame.columns[0])).cast(self._spark_type).alias(self.key)
        return frame.select(key).where(F.col(_quoted(self.key)).isNotNull())

    def _apply(
        self,
        new_members: Callable[[Any], Any],
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None,
    ) -> None:
        """Write the new members version and its history part, then commit both with one ``os.replace``."""
        from pyspark.sql import functions as F

        with self._lock():
            state = self._state() or Committed()
            old = self._read(state.members)
            members_version, part = f"m-{uuid.uuid4().hex}", f"h-{uuid.uuid4().hex}"
            key = F.col(_quoted(self.key)).cast(self._spark_type).alias(self.key)
            new_members(old).select(key).write.parquet(str(self.dir / members_version))
            new = self._read(members_version)
            size = new.count()  # from the Parquet footers
            # entered = new EXCEPT old, exited = old EXCEPT new (EXCEPT DISTINCT, in Spark)
            changes = (
                new.subtract(old)
                .withColumn("change", F.lit(ENTERED))
                .unionByName(old.subtract(new).withColumn("change", F.lit(EXITED)))
            )
            rows = changes.select(
                F.col(_quoted(self.key)),
                F.col("change"),
                F.lit(run_id).cast("bigint").alias("refresh_id"),
                F.lit(at.isoformat(sep=" ")).cast("timestamp_ntz").alias("at"),
                F.lit(version).cast("int").alias("version"),
            )
            rows.write.parquet(str(self.dir / part))
            counted = self._history_frame((part,)).groupBy("change").count().collect()
            counts = {r["change"]: int(r["count"]) for r in counted}
            entered, exited = counts.get(ENTERED, 0), counts.get(EXITED, 0)
            if before_commit is not None:
                before_commit()  # tests kill the process here: files written, nothing committed
            history = self._compacted((*state.history, part))
            committed = Committed(
                members=members_version,
                history=history,
                size=size,
                last_run=run_id,
                last_changes=(entered, exited),
            )
            committed.write(self.dir / COMMIT)
            self._clean(keep={members_version, *history}, previous=state.members)

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

    def source(self) -> exp.Select:
        """The query of the stored members' keys (what ``in_segment`` reads)."""
        return exp.select(exp.column(self.key, quoted=True)).from_(self.members)

    def exists(self) -> bool:
        return (self.dir / COMMIT).is_file()

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

    def changes(self, run_id: int) -> tuple[int, int]:
        """(entered, exited) counts of one committed change."""
        state = self._state()
        if state is None:
            return 0, 0
        if state.last_run == run_id:
            return state.last_changes
        from pyspark.sql import functions as F

        rows = self._history_frame(state.history).where(F.col("refresh_id") == run_id).groupBy("change").count().collect()
        counts = {r["change"]: int(r["count"]) for r in rows}
        return counts.get(ENTERED, 0), counts.get(EXITED, 0)

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
