"""DuckDB, the embedded default engine: one database file per workspace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from segmenta.engines.base import Engine
from segmenta.model.schema import ColumnType, Table

#: How each model type is stored.
SQL_TYPES: dict[ColumnType, str] = {
    ColumnType.TEXT: "VARCHAR",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.DECIMAL: "DECIMAL(38, 10)",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMP",
    ColumnType.CHOICE: "VARCHAR",
    ColumnType.CHOICES: "VARCHAR[]",
}


class DuckDBEngine(Engine):
    dialect = "duckdb"

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self.con = duckdb.connect(self.path, read_only=read_only)
        self.con.execute("SET TimeZone = 'UTC'")

    def _execute(self, sql: str) -> pa.Table:
        return arrow_result(self.con, sql)

    def _replace_table(self, name: str, table: Table, data: pa.Table) -> None:
        columns = [
            exp.ColumnDef(this=exp.to_identifier(c, quoted=True), kind=exp.DataType.build(SQL_TYPES[col.type], dialect="duckdb"))
            for c, col in table.columns.items()
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

    def tables(self) -> set[str]:
        rows = self.con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        self.con.close()


def arrow_result(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The rows of query ``sql`` as one Arrow table, without the extra copy of a DB-API fetch."""
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()
