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


#: Values holding what LIKE or a string literal could misread: backslash (PostgreSQL's default LIKE
#: escape), the wildcards, segmenta's own escape character and the quote.
TRICKY = ["\\", "a\\b", "a\\\\b", "\\%", "50%", "a_b", "axb", "a!b", "it's", "'", "A\\B", "plain", "", None]
TEXT_OPS = ["eq", "ne", "contains", "not_contains", "starts_with", "not_starts_with", "ends_with", "not_ends_with"]


def test_text_operators_with_backslashes_agree_on_postgres_and_duckdb(tmp_path: Path) -> None:
    import psycopg

    import segmenta

    try:
        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        need(False, f"PostgreSQL on 127.0.0.1:5432 ({exc})")
    model = {"tables": {"t": {"key": "id", "columns": {"id": {"type": "integer"}, "s": {"type": "text"}}}}}
    ws = segmenta.Workspace.init(tmp_path / "ws", model=segmenta.Model.from_data(model))
    csv_file = tmp_path / "t.csv"
    import csv

    with csv_file.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "s"])
        w.writerows([i, "" if v is None else v] for i, v in enumerate(TRICKY, 1))
    ws.load("t", csv_file)
    schema = f"segmenta_{uuid.uuid4().hex[:10]}"
    try:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute('CREATE TABLE "t" ("id" BIGINT, "s" TEXT)')
        with conn.cursor() as cur:
            rows = ws.engine.run("SELECT id, s FROM t ORDER BY id").to_pylist()
            cur.executemany('INSERT INTO "t" VALUES (%s, %s)', [(r["id"], r["s"]) for r in rows])
        wrong = []
        for value in [v for v in TRICKY if v]:
            for op in TEXT_OPS:
                for case_sensitive in (False, True):
                    raw = {
                        "audience": "t",
                        "groups": [{"where": {"attribute": "s", "op": op, "value": value, "case_sensitive": case_sensitive}}],
                    }
                    want = ws.evaluate(raw).keys
                    got = [r[0] for r in conn.execute(ws.sql(raw, dialect="postgres")).fetchall()]
                    if got != want:
                        wrong.append((op, value, case_sensitive, got, want))
        assert wrong == []
    finally:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()
        ws.close()
