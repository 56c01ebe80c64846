"""The engine protocol: a handful of hooks behind shared, final behaviour.

Subclasses fill in ``_execute``, ``_replace_table``, ``tables``, ``close`` and the
``open`` factory; the base class does the timing, logging and error wrapping (with the SQL
that failed) once for all of them, after splink's ``DatabaseAPI``. What differs between
engines beyond running SQL is a hook with a SQL default that an engine overrides only where
it differs: ``stage`` (Arrow data as a table), ``materialise`` (a query's rows as a scratch
table), ``drop_staged``, ``session`` (per request), ``membership_store``, ``stream``,
``read_only_reason``, ``discard`` and ``workspace_settings``. docs/engines.md lists them.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from sqlglot import exp

from segmenta.engines.sqltypes import arrow_column_type
from segmenta.errors import EngineError, Timeout
from segmenta.model.schema import Column, ColumnType, Table

if TYPE_CHECKING:
    import pyarrow as pa  # imported where a result is built: the CLI's evaluate needs no Arrow (start-up)

    from segmenta.types import EventLog, MembershipStore

log = logging.getLogger("segmenta.engine")


class Engine(ABC):
    """Runs compiled sqlglot trees; knows nothing of definitions or the store."""

    #: sqlglot dialect the engine speaks.
    dialect: str = ""

    @classmethod
    def open(cls, workspace: Path, section: Any) -> Engine:
        """Factory (the registry in :mod:`segmenta.engines` calls it): the engine of the workspace at ``workspace``.

        ``section`` is the engine's own section of ``segmenta.yaml`` (``duckdb:``, ``postgres:``, ...) as
        written, None when absent; the engine checks it (a bad value names its key).
        """
        raise NotImplementedError(f"{cls.__name__} has no open() factory")

    @classmethod
    def scratch(cls) -> Engine:
        """Factory of the local engine (``segmenta.engines.LOCAL``): a new in-memory engine for files and scratch tables."""
        raise NotImplementedError(f"{cls.__name__} keeps no local scratch engine")

    @classmethod
    def workspace_settings(cls, workspace_config: Mapping[str, Any]) -> dict[str, Any]:
        """Hook: the engine's section that ``init`` records for a new workspace (default: as given).

        ``workspace_config`` is the whole ``segmenta.yaml`` being written; an engine that needs
        something fixed at creation (PostgreSQL: a schema of the workspace's own) adds it here.
        """
        section = workspace_config.get(cls.dialect)
        return dict(section) if isinstance(section, Mapping) else {}

    #: Seconds one query (:meth:`run`) may take before it is cancelled and :class:`Timeout` raised;
    #: ``limits.statement_timeout_s`` in ``segmenta.yaml`` (see :func:`configure_limits`), None for no limit.
    statement_timeout_s: float | None = 30.0

    @final
    def sql(self, query: exp.Expr) -> str:
        """``query`` rendered in this engine's dialect, with the dialect's rewrites (compiler/dialects.py)."""
        from segmenta.compiler.dialects import render

        return render(query, dialect=self.dialect, pretty=False)

    @final
    def run(self, query: exp.Expr | str, *, timeout_s: float | None = None) -> pa.Table:
        """Execute a query and return its rows as Arrow.

        A query running longer than ``timeout_s`` (default :attr:`statement_timeout_s`) is
        cancelled through the engine's :meth:`_execute_cancellable` hook and raises
        :class:`~segmenta.errors.Timeout`; the engine stays usable for the next query.
        """
        sql = query if isinstance(query, str) else self.sql(query)
        result: pa.Table = self._guarded(sql, timeout_s, self._execute_cancellable)
        return result

    @final
    def column(self, query: exp.Expr | str, *, timeout_s: float | None = None) -> list[Any]:
        """The first column of a query's rows as Python values (member keys), under the same time limit as :meth:`run`."""
        sql = query if isinstance(query, str) else self.sql(query)
        values: list[Any] = self._guarded(sql, timeout_s, self._column_cancellable)
        return values

    def _guarded(self, sql: str, timeout_s: float | None, execute: Callable[[str, Cancel], Any]) -> Any:
        limit = self.statement_timeout_s if timeout_s is None else timeout_s
        try:
            self._prepare()  # e.g. starting a Spark session: not the statement's time
        except Exception as exc:
            raise EngineError(f"{type(self).__name__} could not start: {exc}", sql=sql) from exc
        start = time.perf_counter()
        cancel = Cancel()
        timer = threading.Timer(limit, cancel.fire) if limit else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            result = execute(sql, cancel)
        except Exception as exc:  # wrap engine-specific errors once, with the SQL
            if cancel.fired:
                raise Timeout(
                    f"the query ran longer than the limit of {limit:g} s (setting limits.statement_timeout_s) and was "
                    "cancelled; narrow the segment, or raise the limit",
                    sql=sql,
                    limit_s=limit,
                ) from exc
            raise EngineError(f"{type(self).__name__} failed: {exc}", sql=sql) from exc
        finally:
            cancel.close()
            if timer is not None:
                timer.cancel()
        log.debug("ran in %.1f ms: %s", (time.perf_counter() - start) * 1000, sql)
        return result

    @final
    def replace_table(self, name: str, table: Table, data: pa.Table) -> None:
        """Replace table ``name`` with ``data`` atomically: readers see the old rows or the new."""
        start = time.perf_counter()
        try:
            self._replace_table(name, table, data)
        except Exception as exc:
            raise EngineError(f"{type(self).__name__} could not replace table {name!r}: {exc}") from exc
        log.info("replaced %s with %d rows in %.1f ms", name, data.num_rows, (time.perf_counter() - start) * 1000)

    @final
    def execute(self, statements: list[exp.Expr], *, before_commit: Callable[[], None] | None = None) -> None:
        """Run ``statements`` in ONE transaction: all take effect or none (used by the segment store).

        ``before_commit`` (optional) is called after the last statement, inside the transaction;
        tests use it to kill a process mid-transaction. Subclasses implement ``_transaction``.
        """
        sqls = [self.sql(s) for s in statements]
        start = time.perf_counter()
        try:
            self._transaction(sqls, before_commit)
        except Exception as exc:
            raise EngineError(f"{type(self).__name__} failed in a transaction: {exc}", sql=";\n".join(sqls)) from exc
        log.debug("transaction of %d statements in %.1f ms", len(sqls), (time.perf_counter() - start) * 1000)

    @abstractmethod
    def _execute(self, sql: str) -> pa.Table: ...

    def _execute_cancellable(self, sql: str, cancel: Cancel) -> pa.Table:
        """Hook for :meth:`run`: execute ``sql``, registering with ``cancel.on_cancel`` how to stop it.

        The default interrupts through :meth:`_interrupt` (the engine's own connection). An
        engine whose queries run elsewhere (a pooled connection, a Spark job group) overrides
        this to register a stop for exactly this query.
        """
        cancel.on_cancel(self._interrupt)
        return self._execute(sql)

    def _column_cancellable(self, sql: str, cancel: Cancel) -> list[Any]:
        """Hook for :meth:`column`: by default the first column of :meth:`_execute_cancellable`'s Arrow result."""
        values: list[Any] = self._execute_cancellable(sql, cancel).column(0).to_pylist()
        return values

    def _prepare(self) -> None:
        """Hook: get ready to run a statement (connect, start a session) before its time limit starts."""
        return None

    def _interrupt(self) -> None:
        """Hook: stop the statement running on this engine now (called from a timer thread); default: cannot."""
        log.warning("%s cannot cancel a running statement; it runs to its end", type(self).__name__)

    def _transaction(self, sqls: list[str], before_commit: Callable[[], None] | None) -> None:
        """Hook for :meth:`execute`: run the statements (no result) in one transaction, commit, or roll back on error."""
        raise NotImplementedError(f"{type(self).__name__} does not run transactions")

    @abstractmethod
    def _replace_table(self, name: str, table: Table, data: pa.Table) -> None: ...

    def read_only_reason(self, name: str) -> str | None:
        """Hook: why segmenta may not replace table ``name`` (it is the user's own table), else None.

        ``load`` asks before reading the file, so that it can refuse with the reason and change nothing.
        """
        return None

    #: Whether ``segmenta records`` can change this engine's tables (one transaction for the change
    #: and its bookkeeping); an engine without SQL transactions says no.
    supports_record_changes: bool = True

    def serialise(self, topic: str) -> list[exp.Expr]:
        """Hook: statements that, first in a transaction, make transactions on ``topic`` take turns.

        Until the transaction ends, another one that runs them for the same topic waits. The
        default is none: an engine with one writer at a time (DuckDB) has nothing to add; a
        server with concurrent writers (PostgreSQL) takes a transaction-level lock.
        """
        return []

    #: The schema of segmenta's own tables in the engine (saved segments' membership, events, runs).
    meta_schema: str = "segmenta"

    def membership_store(self, segment_id: int, key: str, key_type: ColumnType) -> MembershipStore:
        """Hook: the store of one saved segment's membership; by default SQL tables written in one transaction."""
        from segmenta.membership.sql import SqlMembership

        return SqlMembership(self, segment_id, key, key_type)

    def event_log(self) -> EventLog:
        """Hook: the workspace's membership event log; by default the ``events`` table of :meth:`membership_store`'s."""
        from segmenta.membership.sql import SqlEventLog

        return SqlEventLog(self)

    def stream(self, query: exp.Expr, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Hook: the rows of ``query`` as Arrow record batches; by default the batches of :meth:`run`."""
        return iter(self.run(query).to_batches(max_chunksize=batch_size))

    def stage(self, name: str, data: pa.Table) -> exp.Table:
        """Hook: ``data`` (Arrow) put where this engine's SQL can join it, as table ``name``, replacing any before.

        Returns the table to name in queries; :meth:`drop_staged` removes it. By default a table
        beside the data, written by :meth:`replace_table` (so it is as atomic as a load); an engine
        with a place of its own for scratch data (PostgreSQL's meta schema) overrides this.
        """
        columns = {f.name: Column(type=arrow_column_type(f.type)) for f in data.schema}
        self.replace_table(name, Table(key=data.schema.names[0], columns=columns), data)
        return exp.Table(this=exp.to_identifier(name, quoted=True))

    def materialise(self, name: str, query: exp.Query) -> exp.Table:
        """Hook: the rows of ``query`` kept in the engine as scratch table ``name`` (replacing any), to read again.

        The rows never leave the engine (a CSV import's matched keys stay where the data is).
        :meth:`drop_staged` removes it. By default ``CREATE TABLE ... AS`` in one transaction.
        """
        table = exp.Table(this=exp.to_identifier(name, quoted=True))
        self.execute(
            [
                exp.Drop(tables=[table.copy()], kind="TABLE", exists=True),
                exp.Create(this=table.copy(), kind="TABLE", expression=query.copy()),
            ]
        )
        return table

    def drop_staged(self, name: str) -> None:
        """Hook: remove a table :meth:`stage` or :meth:`materialise` made; nothing happens when it is gone already."""
        self.execute([exp.Drop(tables=[exp.Table(this=exp.to_identifier(name, quoted=True))], kind="TABLE", exists=True)])

    def discard(self) -> None:
        """Hook: remove what this engine created for a workspace outside its directory (``init`` failed part way).

        By default nothing: the data lives in the workspace directory, which ``init`` removes.
        """
        return None

    @contextmanager
    def session(self) -> Iterator[Engine]:
        """Hook: the engine one request of a concurrent service uses, for the request's duration.

        By default this engine, to one request at a time (an engine with a single connection
        cannot interleave them); an engine that can (a connection pool) overrides this.
        """
        lock = self.__dict__.setdefault("_session_lock", threading.Lock())
        with lock:
            yield self

    @abstractmethod
    def tables(self) -> set[str]:
        """Names of the tables that hold data."""

    @abstractmethod
    def close(self) -> None: ...


class Cancel:
    """How a running statement is stopped at its time limit: a thread-safe trigger.

    The engine registers stops with :meth:`on_cancel` while the statement runs; :meth:`fire`
    (the timer) calls them, and again every :attr:`REPEAT_S` until :meth:`close` (the statement
    is over): an interrupt that lands while the engine is still planning can be cleared when
    execution starts (DuckDB does), so one is not enough. After :meth:`close` nothing is
    called any more, so a late timer never interrupts the next statement on the same connection.
    """

    REPEAT_S = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: list[Callable[[], None]] = []
        self._open = True
        self._closed = threading.Event()
        self.fired = False

    def on_cancel(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` when the limit is reached (at once, if it already was)."""
        with self._lock:
            self._stops.append(stop)
            if self.fired and self._open:
                self._call(stop)

    def fire(self) -> None:
        with self._lock:
            if not self._open or self.fired:
                return
            self.fired = True
        while True:
            with self._lock:
                if not self._open:
                    return
                for stop in self._stops:
                    self._call(stop)
            if self._closed.wait(self.REPEAT_S):
                return

    @staticmethod
    def _call(stop: Callable[[], None]) -> None:
        try:
            stop()
        except Exception:  # pragma: no cover - a failing stop must not kill the timer thread
            log.exception("could not cancel a statement")

    def close(self) -> None:
        with self._lock:
            self._open = False
        self._closed.set()


def configure_limits(engine: Engine, config: Mapping[str, Any]) -> Engine:
    """Apply ``limits.statement_timeout_s`` of ``segmenta.yaml`` (``config``) to ``engine``; returns it."""
    from segmenta.model.validate import statement_timeout_from_config

    limits = config.get("limits")
    value = statement_timeout_from_config(limits)  # validates the setting whether set or not
    if isinstance(limits, Mapping) and limits.get("statement_timeout_s") is not None:
        engine.statement_timeout_s = value
    return engine  # else the engine's own default (30 s; Spark, slower to start a job, longer)
