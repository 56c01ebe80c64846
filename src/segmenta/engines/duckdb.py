"""DuckDB, the embedded default engine: one database file per workspace.

Each process bounds what DuckDB may take (``segmenta.yaml``)::

    duckdb:
      memory_limit: 4GB     # or "25%" of the machine's memory (the default); DuckDB spills to disk beyond it
      threads: 2            # default: the cores this process may use
    limits:
      statement_timeout_s: 30   # a query running longer is interrupted (Timeout); the connection stays usable
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from segmenta.engines.base import Cancel, Engine
from segmenta.engines.sqltypes import sql_type
from segmenta.errors import Problem, RejectedInput, WorkspaceBusy
from segmenta.model.schema import Table

if TYPE_CHECKING:
    import pyarrow as pa

#: The database file in the workspace directory.
DATA_FILE = "data.duckdb"


#: Smallest memory limit accepted (DuckDB needs some room for any query at all).
MIN_MEMORY_BYTES = 64 * 2**20
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*|%)\s*$")


def physical_memory() -> int:
    """Bytes of memory in this machine (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _default_memory_bytes() -> int:
    ram = physical_memory()
    return max(MIN_MEMORY_BYTES * 16, ram // 4) if ram else 2 * 2**30


@dataclass(frozen=True)
class DuckDBSettings:
    """Per-process bounds of DuckDB: the ``duckdb:`` section of ``segmenta.yaml``."""

    #: Bytes DuckDB may hold in memory (default: a quarter of the machine's memory, at least 1 GiB).
    memory_bytes: int = field(default_factory=_default_memory_bytes)
    #: Worker threads (default: the usable cores).
    threads: int = field(default_factory=usable_cores)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> DuckDBSettings:
        """Read ``duckdb: {memory_limit, threads}``; a bad value names its key and the allowed range."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise RejectedInput([Problem("segmenta.yaml: duckdb", "'duckdb' is a mapping with memory_limit and threads")])
        values: dict[str, int] = {}
        for key, value in raw.items():
            if key == "memory_limit":
                values["memory_bytes"] = parse_memory(value, where="segmenta.yaml: duckdb.memory_limit")
            elif key == "threads":
                high = max(64, 4 * usable_cores())
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                    raise RejectedInput(
                        [
                            Problem(
                                "segmenta.yaml: duckdb.threads",
                                f"must be a whole number from 1 to {high}, not {json.dumps(value, default=str)}",
                            )
                        ]
                    )
                values["threads"] = value
            else:
                raise RejectedInput(
                    [
                        Problem(
                            f"segmenta.yaml: duckdb.{key}", "unknown setting; the duckdb section takes memory_limit and threads"
                        )
                    ]
                )
        return cls(**values)  # type: ignore[arg-type]


def parse_memory(value: Any, *, where: str) -> int:
    """Bytes from a size such as ``"4GB"``, ``"512MiB"`` or ``"25%"`` (of the machine's memory)."""
    ram = physical_memory()
    m = _MEMORY.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    unit = m.group(2).lower() if m else ""
    if m and unit == "%" and 0 < float(m.group(1)) <= 100 and ram:
        size = int(ram * float(m.group(1)) / 100)
    elif m and unit in _UNITS:
        size = int(float(m.group(1)) * _UNITS[unit])
    else:
        size = -1
    high = ram or 2**50
    if not MIN_MEMORY_BYTES <= size <= high:
        raise RejectedInput(
            [
                Problem(
                    where,
                    f'must be a size from 64MiB to {high / 2**30:.1f}GiB (this machine\'s memory), such as "4GB" '
                    f'or "25%", not {json.dumps(value, default=str)}',
                )
            ]
        )
    return size


class DuckDBEngine(Engine):
    """The embedded engine: one database file (or memory), one connection, a cursor per request."""

    dialect = "duckdb"

    @classmethod
    def open(cls, workspace: Path, section: Any) -> DuckDBEngine:
        """The workspace's database file, bounded by the ``duckdb:`` section."""
        return cls(workspace / DATA_FILE, settings=DuckDBSettings.from_config(section))

    @classmethod
    def scratch(cls) -> DuckDBEngine:
        """An in-memory database for local files and scratch tables, with DuckDB's own memory bound and no time limit."""
        engine = cls(settings=DuckDBSettings(memory_bytes=max(MIN_MEMORY_BYTES * 16, physical_memory() * 4 // 5)))
        engine.statement_timeout_s = None
        return engine

    def __init__(
        self, path: str | Path | None = None, *, read_only: bool = False, settings: DuckDBSettings | None = None
    ) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self.settings = settings if settings is not None else DuckDBSettings()
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": f"{self.settings.memory_bytes // 2**20}MiB",
            "threads": self.settings.threads,
        }
        try:
            self.con = duckdb.connect(self.path, read_only=read_only, config=config)
        except duckdb.IOException as exc:
            busy = _busy(self.path, exc)
            if busy is None:
                raise
            raise busy from None
        self.con.execute("SET TimeZone = 'UTC'")
        if self.path != ":memory:" and not read_only:
            self._make_files_private()

    def _make_files_private(self) -> None:
        # Customer records: the owner's only (0600). DuckDB creates its files with the umask's mode.
        from segmenta.fileio import make_private

        for suffix in ("", ".wal"):
            make_private(self.path + suffix)

    def _execute(self, sql: str) -> pa.Table:
        try:
            return arrow_result(self.con, sql)
        except duckdb.OutOfMemoryException as exc:
            raise self._out_of_memory(exc) from exc

    def _out_of_memory(self, exc: Exception) -> MemoryError:
        limit = self.settings.memory_bytes / 2**30
        return MemoryError(f"the query needs more memory than the limit of {limit:.2f} GiB (setting duckdb.memory_limit): {exc}")

    def _column_cancellable(self, sql: str, cancel: Cancel) -> list[Any]:
        # Plain Python values straight from DuckDB: no Arrow (and numpy) import for a list of keys.
        cancel.on_cancel(self._interrupt)
        try:
            return [row[0] for row in self.con.execute(sql).fetchall()]
        except duckdb.OutOfMemoryException as exc:
            raise self._out_of_memory(exc) from exc

    def _interrupt(self) -> None:
        # Interrupts only what runs on this connection; the service gives each request its own cursor.
        self.con.interrupt()

    def _replace_table(self, name: str, table: Table, data: pa.Table) -> None:
        columns = [
            exp.ColumnDef(this=exp.to_identifier(c, quoted=True), kind=sql_type(col.type)) for c, col in table.columns.items()
        ]
        target = exp.Table(this=exp.to_identifier(name, quoted=True))
        create = exp.Create(this=exp.Schema(this=target, expressions=columns), kind="TABLE", replace=True)
        select = exp.select(*[exp.column(c, quoted=True) for c in table.columns]).from_("__segmenta_incoming")
        insert = exp.insert(select, target.copy())
        self.con.register("__segmenta_incoming", data)
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                self.con.execute(create.sql(dialect="duckdb"))
                self.con.execute(insert.sql(dialect="duckdb"))
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        finally:
            self.con.unregister("__segmenta_incoming")

    def _transaction(self, sqls: list[str], before_commit: Callable[[], None] | None) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            for sql in sqls:
                self.con.execute(sql)
            if before_commit is not None:
                before_commit()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def stage(self, name: str, data: pa.Table) -> exp.Table:
        """``data`` readable as ``name`` on this connection, without a copy (DuckDB scans the Arrow table in place)."""
        self.con.register(name, data)
        return exp.Table(this=exp.to_identifier(name, quoted=True))

    def materialise(self, name: str, query: exp.Query) -> exp.Table:
        """A temporary table of this connection: no write to the database file, gone when the connection closes."""
        table = exp.Table(this=exp.to_identifier(name, quoted=True))
        create = exp.Create(
            this=table.copy(),
            kind="TABLE",
            replace=True,
            expression=query.copy(),
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        )
        self.execute([create])
        return table

    def drop_staged(self, name: str) -> None:
        self.con.unregister(name)  # a staged Arrow table (no error when there is none)
        # TEMP: only a materialised (temporary) table, never a table of the data by the same name.
        temp = exp.Table(
            this=exp.to_identifier(name, quoted=True), db=exp.to_identifier("main"), catalog=exp.to_identifier("temp")
        )
        self.con.execute(exp.Drop(tables=[temp], kind="TABLE", exists=True).sql(dialect="duckdb"))

    @contextmanager
    def session(self) -> Iterator[Engine]:
        """Each request its own cursor on the shared connection: reads run side by side (the service
        serialises writes), and a statement timeout interrupts only that request's cursor."""
        engine = _Cursor(self)
        try:
            yield engine
        finally:
            engine.close()

    def tables(self) -> set[str]:
        rows = self.con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        self.con.close()
        if self.path != ":memory:" and Path(self.path + ".wal").exists():
            self._make_files_private()


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*?\(PID (\d+)\)")


def _busy(path: str, exc: Exception) -> WorkspaceBusy | None:
    """The clear error for DuckDB's "Could not set lock on file" (another process holds the database), else None."""
    text = str(exc)
    if "Could not set lock" not in text and "Conflicting lock" not in text:
        return None
    m = _LOCK_HOLDER.search(text)
    pid = int(m.group(1)) if m else None
    who = f"pid {pid}, e.g. `segmenta serve`" if pid is not None else "e.g. `segmenta serve`"
    return WorkspaceBusy(
        f"the workspace {Path(path).parent} is in use by another process ({who}), which holds the lock on its data; "
        "stop it or use its REST API",
        pid=pid,
    )


def arrow_result(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The rows of query ``sql`` as one Arrow table, without the extra copy of a DB-API fetch."""
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


class _Cursor(DuckDBEngine):
    """A DuckDB engine on a cursor of another's connection (same database, own transaction state)."""

    def __init__(self, parent: DuckDBEngine) -> None:  # noqa: D107 - no new connection is opened
        self.path = parent.path
        self.settings = parent.settings  # the memory limit its errors name
        # The workspace's limits.statement_timeout_s: a query over it is interrupted on THIS cursor
        # (other requests' cursors run on), and the cursor is closed when the request ends either way.
        self.statement_timeout_s = parent.statement_timeout_s
        self.meta_schema = parent.meta_schema
        self.con = parent.con.cursor()
        self.con.execute("SET TimeZone = 'UTC'")
