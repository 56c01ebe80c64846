"""The compiled PostgreSQL SQL, run on a real PostgreSQL server over the conformance data.

"Any other SQL engine could run it too": the postgres rendering must give exactly the
conformance members when executed by PostgreSQL itself.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlglot import exp

from tests.conftest import need

PG_URL = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_TYPES = {
    "text": "TEXT",
    "integer": "BIGINT",
    "decimal": "NUMERIC(38, 10)",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "choice": "TEXT",
    "choices": "TEXT[]",
}


@pytest.fixture(scope="module")
def pg_schema(conformance_ws):
    import psycopg
    import psycopg.sql

    try:
        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        need(False, f"PostgreSQL on 127.0.0.1:5432 ({exc})")
    schema = f"segmenta_{uuid.uuid4().hex[:10]}"
    ident = psycopg.sql.Identifier(schema)
    conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(ident))
    conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(ident))
    for name, table in conformance_ws.model.tables.items():
        cols = [
            exp.ColumnDef(
                this=exp.to_identifier(c, quoted=True), kind=exp.DataType.build(PG_TYPES[col.type.value], dialect="postgres")
            )
            for c, col in table.columns.items()
        ]
        target = exp.Table(this=exp.to_identifier(name, quoted=True))
        conn.execute(exp.Create(this=exp.Schema(this=target, expressions=cols), kind="TABLE").sql(dialect="postgres"))
        rows = conformance_ws.engine.run(exp.select("*").from_(target.copy())).to_pylist()
        if rows:
            insert = (
                exp.insert(
                    exp.values([tuple(exp.Placeholder() for _ in table.columns)]),
                    target.copy(),
                    columns=[exp.to_identifier(c, quoted=True) for c in table.columns],
                )
                .sql(dialect="postgres")
                .replace("?", "%s")
            )
            with conn.cursor() as cur:
                cur.executemany(insert, [tuple(r[c] for c in table.columns) for r in rows])
    yield conn
    conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(ident))
    conn.close()


def test_postgres_runs_every_conformance_case(pg_schema, conformance_ws, conformance_expected, conformance_dir: Path) -> None:
    for name, want in conformance_expected["members"].items():
        sql = conformance_ws.sql(
            conformance_dir / "segments" / f"{name}.json", dialect="postgres", as_of=conformance_expected["as_of"]
        )
        got = [row[0] for row in pg_schema.execute(sql).fetchall()]
        assert got == want, f"{name}: postgres gave {got}, expected {want}\n{sql}"
