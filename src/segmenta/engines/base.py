"""The engine protocol: a handful of hooks behind shared, final behaviour.

Subclasses fill in ``_execute``, ``_replace_table``, ``_tables`` and ``close``; the
base class does the timing, logging and error wrapping (with the SQL that failed)
once for all of them, after splink's ``DatabaseAPI``.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, final

import pyarrow as pa
from sqlglot import exp

from segmenta.errors import EngineError
from segmenta.model.schema import ColumnType, Table

if TYPE_CHECKING:
    from segmenta.types import MembershipStore

log = logging.getLogger("segmenta.engine")


class Engine(ABC):
    """Runs compiled sqlglot trees; knows nothing of definitions or the store."""

    #: sqlglot dialect the engine speaks.
    dialect: str = ""

    @final
    def sql(self, query: exp.Expr) -> str:
        """``query`` rendered in this engine's dialect, with the dialect's rewrites (compiler/dialects.py)."""
        from segmenta.compiler.dialects import render

        return render(query, dialect=self.dialect, pretty=False)

    @final
    def run(self, query: exp.Expr | str) -> pa.Table:
        """Execute a query and return its rows as Arrow."""
        sql = query if isinstance(query, str) else self.sql(query)
        start = time.perf_counter()
        try:
            result = self._execute(sql)
        except Exception as exc:  # wrap engine-specific errors once, with the SQL
            raise EngineError(f"{type(self).__name__} failed: {exc}", sql=sql) from exc
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

    #: The schema of segmenta's own tables in the engine (saved segments' membership, history, runs).
    meta_schema: str = "segmenta"

    def membership_store(self, segment_id: int, key: str, key_type: ColumnType) -> MembershipStore:
        """Hook: the store of one saved segment's membership; by default SQL tables written in one transaction."""
        from segmenta.membership.sql import SqlMembership

        return SqlMembership(self, segment_id, key, key_type)

    def stream(self, query: exp.Expr, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Hook: the rows of ``query`` as Arrow record batches; by default the batches of :meth:`run`."""
        return iter(self.run(query).to_batches(max_chunksize=batch_size))

    @abstractmethod
    def tables(self) -> set[str]:
        """Names of the tables that hold data."""

    @abstractmethod
    def close(self) -> None: ...
