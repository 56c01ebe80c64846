"""PostgreSQL as a data engine: settings, schemas of its own, the user's tables read-only, load, pool, staging."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from sqlglot import exp

import segmenta
from segmenta.errors import EngineError, RejectedInput
from segmenta.model.schema import Model
from segmenta.services.loading import arrow_schema
from tests.engines.helpers import cli, drop

pytest_plugins = ["tests.engines.fixtures"]

CONFORMANCE = Path(__file__).resolve().parents[1] / "data" / "conformance"
EXPECTED = json.loads((CONFORMANCE / "expected.json").read_text())


def _psql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    import psycopg

    rows: list[tuple[Any, ...]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            cur = conn.execute(s)
            if cur.description is not None:
                rows = cur.fetchall()
    return rows


def _schemas(url: str, prefix: str) -> set[str]:
    return {r[0] for r in _psql(url, f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{prefix}%'")}


def _conformance(ws: segmenta.Workspace, name: str) -> list[int]:
    return ws.evaluate(CONFORMANCE / "segments" / f"{name}.json", as_of=EXPECTED["as_of"]).keys


@pytest.fixture
def pg_ws(pg_url: str, tmp_path: Path) -> Iterator[segmenta.Workspace]:
    """The conformance model and data, loaded by segmenta into a PostgreSQL workspace of its own."""
    ws = segmenta.Workspace.init(
        tmp_path / "loaded", model=CONFORMANCE / "model.yaml", engine="postgres", settings={"postgres": {"url": pg_url}}
    )
    try:
        for csv_file in sorted((CONFORMANCE / "data").glob("*.csv")):
            ws.load(csv_file.stem, csv_file)
        yield ws
    finally:
        drop(ws)


# -- settings ------------------------------------------------------------------------------


def test_missing_url_is_refused_naming_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGMENTA_POSTGRES_URL", raising=False)
    r = cli("--workspace", str(tmp_path / "ws"), "--engine", "postgres", "init", "--model", str(CONFORMANCE / "model.yaml"))
    assert r.returncode == 2, r.stderr
    assert "postgres.url" in r.stderr and "SEGMENTA_POSTGRES_URL" in r.stderr
    assert not (tmp_path / "ws").exists()  # nothing changed


@pytest.mark.parametrize(
    ("section", "named", "says"),
    [
        ({"url": "not a url"}, "postgres.url", "postgresql://"),
        ({"url": "postgresql://u@h/db", "pool_size": 0}, "postgres.pool_size", "from 1 to 64"),
        ({"url": "postgresql://u@h/db", "pool_size": "four"}, "postgres.pool_size", "from 1 to 64"),
        ({"url": "postgresql://u@h/db", "schema": "Has-Dash"}, "postgres.schema", "lower-case letters"),
        ({"url": "postgresql://u@h/db", "tables": {"order": "orders"}}, "postgres.tables.order", "schema.table"),
        ({"url": "postgresql://u@h/db", "colour": "blue"}, "postgres.colour", "known: url"),
    ],
)
def test_bad_settings_exit_2_naming_key_and_what_is_right(
    section: dict, named: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGMENTA_POSTGRES_URL", raising=False)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "segmenta.yaml").write_text(yaml.safe_dump({"engine": "postgres", "postgres": section}))
    before = (ws / "segmenta.yaml").read_text()
    r = cli("--workspace", str(ws), "init", "--model", str(CONFORMANCE / "model.yaml"))
    assert r.returncode == 2, r.stderr
    assert named in r.stderr and says in r.stderr, r.stderr
    assert sorted(p.name for p in ws.iterdir()) == ["segmenta.yaml"] and (ws / "segmenta.yaml").read_text() == before


def test_the_url_comes_from_the_environment(pg_url: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    env = {"SEGMENTA_POSTGRES_URL": pg_url}
    r = cli("--workspace", str(ws), "--engine", "postgres", "init", "--model", str(CONFORMANCE / "model.yaml"), env=env)
    assert r.returncode == 0, r.stderr
    config = yaml.safe_load((ws / "segmenta.yaml").read_text())
    assert config["engine"] == "postgres" and "url" not in config["postgres"]  # the secret stays in the environment
    schema = config["postgres"]["schema"]
    try:
        assert {schema, schema + "_meta"} <= _schemas(pg_url, schema)
        r = cli("--workspace", str(ws), "load", "contact", str(CONFORMANCE / "data" / "contact.csv"), env=env)
        assert r.returncode == 0, r.stderr
        assert _psql(pg_url, f'SELECT count(*) FROM "{schema}"."contact"') == [(8,)]
    finally:
        _psql(pg_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', f'DROP SCHEMA IF EXISTS "{schema}_meta" CASCADE')


def test_an_unreachable_server_is_named_without_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGMENTA_POSTGRES_URL", raising=False)
    url = "postgresql://someone:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(EngineError) as caught:
        segmenta.Workspace.init(
            tmp_path / "ws", model=CONFORMANCE / "model.yaml", engine="postgres", settings={"postgres": {"url": url}}
        )
    message = str(caught.value)
    assert "someone@127.0.0.1:1/nowhere" in message and "postgres.url" in message
    assert "s3cret" not in message
    assert not (tmp_path / "ws").exists()


def test_sql_needs_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendering SQL opens no connection: a workspace whose server is down still prints its queries."""
    monkeypatch.delenv("SEGMENTA_POSTGRES_URL", raising=False)
    ws = tmp_path / "ws"
    r = cli("--workspace", str(ws), "init", "--model", str(CONFORMANCE / "model.yaml"))
    assert r.returncode == 0, r.stderr
    config = yaml.safe_load((ws / "segmenta.yaml").read_text())
    config.update(engine="postgres", postgres={"url": "postgresql://nobody@127.0.0.1:1/none"})
    (ws / "segmenta.yaml").write_text(yaml.safe_dump(config))
    segment = CONFORMANCE / "segments" / "never_ordered.json"
    r = cli("--workspace", str(ws), "segment", "sql", str(segment), "--dialect", "postgres")
    assert r.returncode == 0, r.stderr
    assert "SELECT" in r.stdout


# -- schemas of its own ------------------------------------------------------------------------


def test_two_workspaces_share_one_database_without_sharing_data(pg_url: str, tmp_path: Path) -> None:
    model = CONFORMANCE / "model.yaml"
    settings = {"postgres": {"url": pg_url}}
    a = segmenta.Workspace.init(tmp_path / "a", model=model, engine="postgres", settings=settings)
    b = segmenta.Workspace.init(tmp_path / "b", model=model, engine="postgres", settings=settings)
    try:
        assert a.engine.schema != b.engine.schema  # type: ignore[attr-defined]
        a.load("contact", CONFORMANCE / "data" / "contact.csv")
        assert a.engine.run('SELECT count(*) AS n FROM "contact"').to_pylist() == [{"n": 8}]
        assert b.engine.run('SELECT count(*) AS n FROM "contact"').to_pylist() == [{"n": 0}]
        reopened = segmenta.Workspace.open(tmp_path / "a")  # the schema is recorded: reopening finds the same data
        try:
            assert reopened.engine.run('SELECT count(*) AS n FROM "contact"').to_pylist() == [{"n": 8}]
        finally:
            reopened.close()
    finally:
        drop(a)
        drop(b)
    assert not _schemas(pg_url, a.engine.schema) and not _schemas(pg_url, b.engine.schema)  # type: ignore[attr-defined]


def test_conformance_members_and_preview(pg_ws: segmenta.Workspace) -> None:
    for name, want in EXPECTED["members"].items():
        assert _conformance(pg_ws, name) == want, name
    preview = pg_ws.preview(
        CONFORMANCE / "segments" / "never_ordered.json", limit=2, columns=["email", "tier"], as_of=EXPECTED["as_of"]
    )
    want = EXPECTED["members"]["never_ordered"]
    assert preview.count == len(want)
    assert [r["contactid"] for r in preview.rows] == want[:2]
    assert preview.masked == ["email"] and {r["email"] for r in preview.rows} <= {"***", None}


# -- the user's tables, read-only ------------------------------------------------------------------


@pytest.fixture
def crm(pg_url: str, pg_ws: segmenta.Workspace) -> Iterator[tuple[str, str]]:
    """The conformance tables copied into a schema of the user's, and a role that may only read them."""
    schema, role = f"crm_{uuid.uuid4().hex[:8]}", f"reader_{uuid.uuid4().hex[:8]}"
    own = pg_ws.engine.schema  # type: ignore[attr-defined]
    statements = [f'CREATE SCHEMA "{schema}"']
    for name in pg_ws.model.tables:
        statements.append(f'CREATE TABLE "{schema}"."{name}" AS TABLE "{own}"."{name}"')
    statements += [
        f'CREATE ROLE "{role}" LOGIN',
        f'GRANT CONNECT, CREATE ON DATABASE test TO "{role}"',
        f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"',
        f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
    ]
    _psql(pg_url, *statements)
    try:
        yield schema, pg_url.replace("://postgres@", f"://{role}@").replace("://root@", f"://{role}@")
    finally:
        _psql(pg_url, f'DROP SCHEMA "{schema}" CASCADE')
        for s in _schemas(pg_url, "segmenta_"):
            owner = _psql(pg_url, f"SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '{s}'")
            if owner == [(role,)]:
                _psql(pg_url, f'DROP SCHEMA "{s}" CASCADE')
        _psql(pg_url, f'REVOKE ALL ON DATABASE test FROM "{role}"', f'DROP ROLE "{role}"')


def test_existing_tables_in_a_named_schema_need_only_read_access(crm: tuple[str, str], tmp_path: Path) -> None:
    schema, reader_url = crm
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "segmenta.yaml").write_text(yaml.safe_dump({"postgres": {"url": reader_url, "tables_schema": schema}}))
    r = cli("--workspace", str(ws), "--engine", "postgres", "init", "--model", str(CONFORMANCE / "model.yaml"))
    assert r.returncode == 0, r.stderr
    opened = segmenta.Workspace.open(ws)
    try:
        assert opened.engine.tables() >= set(opened.model.tables)
        for name, want in EXPECTED["members"].items():
            assert _conformance(opened, name) == want, name
        # segmenta made no table of its own: every model table is read from the user's schema
        assert opened.engine.run(
            exp.select(exp.Count(this=exp.Star()).as_("n"))
            .from_("information_schema.tables")
            .where(exp.column("table_schema").eq(exp.Literal.string(opened.engine.schema)))  # type: ignore[attr-defined]
        ).to_pylist() == [{"n": 0}]
    finally:
        drop(opened)
    # load refuses the user's table, names the setting, and changes nothing
    r = cli("--workspace", str(ws), "load", "contact", str(CONFORMANCE / "data" / "lead.csv"))
    assert r.returncode == 2, r.stderr
    assert f"{schema}.contact" in r.stderr and "postgres.tables_schema" in r.stderr


def test_a_single_table_can_be_mapped_to_any_table(pg_url: str, pg_ws: segmenta.Workspace, tmp_path: Path) -> None:
    """``postgres.tables: {order: sales.orders}``: the model's ``order`` is read from another name."""
    sales = f"sales_{uuid.uuid4().hex[:8]}"
    own = pg_ws.engine.schema  # type: ignore[attr-defined]
    _psql(pg_url, f'CREATE SCHEMA "{sales}"', f'CREATE TABLE "{sales}"."orders" AS TABLE "{own}"."order"')
    ws = None
    try:
        ws = segmenta.Workspace.init(
            tmp_path / "mapped",
            model=CONFORMANCE / "model.yaml",
            engine="postgres",
            settings={"postgres": {"url": pg_url, "tables": {"order": f"{sales}.orders"}}},
        )
        for csv_file in sorted((CONFORMANCE / "data").glob("*.csv")):
            if csv_file.stem != "order":
                ws.load(csv_file.stem, csv_file)
        for name, want in EXPECTED["members"].items():
            assert _conformance(ws, name) == want, name
        with pytest.raises(RejectedInput, match=rf"{sales}\.orders \(postgres\.tables\)"):
            ws.load("order", CONFORMANCE / "data" / "order.csv")
        assert _psql(pg_url, f'SELECT count(*) FROM "{sales}"."orders"') == [(6,)]
    finally:
        if ws is not None:
            drop(ws)
        _psql(pg_url, f'DROP SCHEMA "{sales}" CASCADE')


# -- load ----------------------------------------------------------------------------------------

AWKWARD = Model.from_data(
    {
        "tables": {
            "thing": {
                "key": "id",
                "columns": {
                    "id": {"type": "integer"},
                    "note": {"type": "text"},
                    "price": {"type": "decimal"},
                    "ok": {"type": "boolean"},
                    "day": {"type": "date"},
                    "at": {"type": "datetime"},
                    "tags": {"type": "choices", "choices": ['a "b"', "c,d", "e\\f", "{g}", "NULL", ""]},
                },
            }
        }
    }
)

ROWS = [
    {
        "id": 1,
        "note": "",
        "price": Decimal("0.0000000001"),
        "ok": True,
        "day": dt.date(2024, 2, 29),
        "at": dt.datetime(2024, 3, 31, 23, 59, 59, 999999),
        "tags": [],
    },
    {"id": 2, "note": None, "price": None, "ok": None, "day": None, "at": None, "tags": None},
    {
        "id": 3,
        "note": 'quote " comma , newline\n backslash \\ tab\t',
        "price": Decimal("-123456789012345678.5"),
        "ok": False,
        "day": dt.date(1, 1, 1),
        "at": dt.datetime(1970, 1, 1),
        "tags": ['a "b"', "c,d", "e\\f", "{g}", "NULL"],
    },
    {
        "id": 4,
        "note": "NULL",
        "price": Decimal("1"),
        "ok": True,
        "day": dt.date(9999, 12, 31),
        "at": dt.datetime(2024, 1, 1, 12),
        "tags": [""],
    },
]


def test_load_keeps_every_value_exactly(pg_url: str, tmp_path: Path) -> None:
    """Empty strings stay empty (not null), the string "NULL" stays a string, quotes and separators survive COPY."""
    ws = segmenta.Workspace.init(tmp_path / "ws", model=AWKWARD, engine="postgres", settings={"postgres": {"url": pg_url}})
    try:
        ws.engine.replace_table(
            "thing", AWKWARD.table("thing"), pa.Table.from_pylist(ROWS, schema=arrow_schema(AWKWARD.table("thing")))
        )
        assert ws.engine.run('SELECT * FROM "thing" ORDER BY "id"').to_pylist() == ROWS
    finally:
        drop(ws)


def test_a_failed_load_changes_nothing(pg_url: str, pg_ws: segmenta.Workspace, tmp_path: Path) -> None:
    before = pg_ws.engine.run('SELECT * FROM "contact" ORDER BY "contactid"')
    bad = tmp_path / "contact.csv"
    bad.write_text("contactid,firstname\n1,Ann\n1,Bob\n")
    with pytest.raises(RejectedInput):
        pg_ws.load("contact", bad)
    # the engine's own transaction: the server refuses the rows half way through COPY
    table = pg_ws.model.table("contact")
    rows = before.to_pylist()
    rows[-1]["firstname"] = "bad\x00byte"  # PostgreSQL text cannot hold NUL
    with pytest.raises(EngineError):
        pg_ws.engine.replace_table("contact", table, pa.Table.from_pylist(rows, schema=arrow_schema(table)))
    assert pg_ws.engine.run('SELECT * FROM "contact" ORDER BY "contactid"').equals(before)


# -- concurrency and staging ------------------------------------------------------------------------


def test_concurrent_evaluations_share_a_small_pool(pg_url: str, tmp_path: Path) -> None:
    ws = segmenta.Workspace.init(
        tmp_path / "ws",
        model=CONFORMANCE / "model.yaml",
        engine="postgres",
        settings={"postgres": {"url": pg_url, "pool_size": 2}},
    )
    try:
        for csv_file in sorted((CONFORMANCE / "data").glob("*.csv")):
            ws.load(csv_file.stem, csv_file)
        results: dict[int, dict[str, list[int]]] = {}
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                results[i] = {name: _conformance(ws, name) for name in EXPECTED["members"]}
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(r == EXPECTED["members"] for r in results.values())
        name = f"segmenta {ws.engine.schema}"  # type: ignore[attr-defined]
        held = _psql(pg_url, f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}'")
        assert 1 <= held[0][0] <= 2  # six threads, two connections
    finally:
        drop(ws)


def test_staged_arrow_data_joins_and_is_dropped(pg_ws: segmenta.Workspace) -> None:
    engine = pg_ws.engine
    staged = engine.stage("emails_1", pa.table({"email": ["ANN@example.com", None, "x"], "n": [1, 2, 3]}))  # type: ignore[attr-defined]
    assert staged.db == engine.meta_schema  # type: ignore[attr-defined]
    joined = engine.run(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(staged.copy()).where("n >= 2"))
    assert joined.to_pylist() == [{"n": 2}]
    engine.drop_staged("emails_1")  # type: ignore[attr-defined]
    engine.drop_staged("emails_1")  # type: ignore[attr-defined]  (gone already: no error)
    with pytest.raises(EngineError):
        engine.run(exp.select("*").from_(staged))


def test_a_query_over_the_statement_timeout_is_cancelled_and_the_pool_stays_usable(pg_ws: segmenta.Workspace) -> None:
    from segmenta.errors import Timeout

    engine = pg_ws.engine
    engine.statement_timeout_s = 0.5
    start = time.perf_counter()
    with pytest.raises(Timeout, match="limits.statement_timeout_s"):
        engine.run("SELECT pg_sleep(20)")
    assert time.perf_counter() - start < 10  # cancelled on the server, not waited out
    assert engine.run('SELECT count(*) AS n FROM "contact"').to_pylist() == [{"n": 8}]


def test_a_timed_out_statement_never_cancels_the_next_one_on_its_pooled_connection(pg_url: str, tmp_path: Path) -> None:
    """The time limit's Cancel re-fires until the caller closes it, after the connection is back in
    the pool: with one connection, the next statement gets that very connection and must run."""
    import psycopg

    from segmenta.engines.base import Cancel

    ws = segmenta.Workspace.init(
        tmp_path / "ws",
        model=CONFORMANCE / "model.yaml",
        engine="postgres",
        settings={"postgres": {"url": pg_url, "pool_size": 1}},
    )
    try:
        engine = ws.engine
        cancel = Cancel()
        timer = threading.Timer(0.3, cancel.fire)
        timer.start()
        try:
            start = time.perf_counter()
            with pytest.raises(psycopg.errors.QueryCanceled):
                engine._execute_cancellable("SELECT pg_sleep(20)", cancel)  # type: ignore[attr-defined]
            assert time.perf_counter() - start < 10
            # The Cancel is still firing (run() closes it only after this returns): the connection is not its target any more.
            assert engine.run("SELECT 1 AS n FROM pg_sleep(0.8)").to_pylist() == [{"n": 1}]
        finally:
            cancel.close()
            timer.join()
    finally:
        drop(ws)


def test_stream_hands_out_bounded_batches_of_the_whole_result(pg_ws: segmenta.Workspace) -> None:
    import sqlglot

    query = sqlglot.parse_one("SELECT k, k % 7 AS r FROM generate_series(1, 150000) AS g(k) ORDER BY k", dialect="postgres")
    batches = list(pg_ws.engine.stream(query, batch_size=65_536))
    assert [b.num_rows for b in batches] == [65_536, 65_536, 150_000 - 2 * 65_536]
    assert pa.Table.from_batches(batches).column("k").to_pylist() == list(range(1, 150_001))
    with pytest.raises(EngineError, match="no_such_table"):
        list(pg_ws.engine.stream(sqlglot.parse_one("SELECT * FROM no_such_table")))
    assert pg_ws.engine.run('SELECT count(*) AS n FROM "contact"').to_pylist() == [{"n": 8}]  # the pool is fine


def test_a_mapped_table_that_does_not_exist_is_named(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"postgres\.tables\.order: cannot read sales_nowhere\.orders"):
        segmenta.Workspace.init(
            tmp_path / "ws",
            model=CONFORMANCE / "model.yaml",
            engine="postgres",
            settings={"postgres": {"url": pg_url, "schema": "segmenta_missing_map", "tables": {"order": "sales_nowhere.orders"}}},
        )
    assert not (tmp_path / "ws").exists()
    _psql(
        pg_url,
        'DROP SCHEMA IF EXISTS "segmenta_missing_map" CASCADE',
        'DROP SCHEMA IF EXISTS "segmenta_missing_map_meta" CASCADE',
    )


def test_a_failed_init_leaves_no_schema_behind_but_never_drops_one_it_found(pg_url: str, tmp_path: Path) -> None:
    def interrupted(step: str, done: int, total: int) -> None:
        raise KeyboardInterrupt

    fresh = f"segmenta_failed_{uuid.uuid4().hex[:8]}"
    with pytest.raises(KeyboardInterrupt):
        segmenta.Workspace.init(
            tmp_path / "a",
            sample=True,
            contacts=50,
            progress=interrupted,
            engine="postgres",
            settings={"postgres": {"url": pg_url, "schema": fresh}},
        )
    assert not _schemas(pg_url, fresh) and not (tmp_path / "a").exists()

    kept = f"segmenta_kept_{uuid.uuid4().hex[:8]}"
    _psql(pg_url, f'CREATE SCHEMA "{kept}"', f'CREATE TABLE "{kept}"."note" (x int)', f'INSERT INTO "{kept}"."note" VALUES (1)')
    try:
        with pytest.raises(KeyboardInterrupt):
            segmenta.Workspace.init(
                tmp_path / "b",
                sample=True,
                contacts=50,
                progress=interrupted,
                engine="postgres",
                settings={"postgres": {"url": pg_url, "schema": kept}},
            )
        assert _psql(pg_url, f'SELECT x FROM "{kept}"."note"') == [(1,)]
    finally:
        _psql(pg_url, f'DROP SCHEMA IF EXISTS "{kept}" CASCADE', f'DROP SCHEMA IF EXISTS "{kept}_meta" CASCADE')


def test_a_malformed_url_is_refused_without_repeating_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGMENTA_POSTGRES_URL", raising=False)
    with pytest.raises(RejectedInput) as caught:
        segmenta.Workspace.init(
            tmp_path / "ws",
            model=CONFORMANCE / "model.yaml",
            engine="postgres",
            settings={"postgres": {"url": "postgresql://u:s3cret@[::1/db"}},
        )
    assert "postgres.url" in str(caught.value) and "s3cret" not in str(caught.value)
    monkeypatch.setenv("SEGMENTA_POSTGRES_URL", "postgresql://u:s3cret@[::1/db")
    with pytest.raises(RejectedInput) as caught:
        segmenta.Workspace.init(tmp_path / "ws2", model=CONFORMANCE / "model.yaml", engine="postgres")
    assert "$SEGMENTA_POSTGRES_URL" in str(caught.value) and "s3cret" not in str(caught.value)


def test_pooled_connections_the_server_closed_are_replaced(pg_url: str, pg_ws: segmenta.Workspace) -> None:
    """A DBA's pg_terminate_backend (or a server restart) between two requests costs no failed request."""
    assert pg_ws.engine.run('SELECT count(*) AS n FROM "contact"').to_pylist() == [{"n": 8}]
    name = f"segmenta {pg_ws.engine.schema}"  # type: ignore[attr-defined]
    killed = _psql(pg_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'")
    assert killed and all(k == (True,) for k in killed)
    for _ in range(3):
        assert pg_ws.engine.run('SELECT count(*) AS n FROM "contact"').to_pylist() == [{"n": 8}]
    # and a write, which cannot simply be run again, checks the connection before its transaction
    _psql(pg_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'")
    pg_ws.load("lead", CONFORMANCE / "data" / "lead.csv")
    assert pg_ws.engine.run('SELECT count(*) AS n FROM "lead"').to_pylist() == [{"n": 3}]


def test_readers_see_the_old_rows_or_the_new_while_a_table_is_replaced(pg_ws: segmenta.Workspace) -> None:
    table = pg_ws.model.table("contact")
    rows = pg_ws.engine.run('SELECT * FROM "contact" ORDER BY "contactid"').to_pylist()
    fewer = pa.Table.from_pylist(rows[:3], schema=arrow_schema(table))
    every = pa.Table.from_pylist(rows, schema=arrow_schema(table))
    seen: set[int] = set()
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.add(pg_ws.engine.run('SELECT count(*) AS n FROM "contact"').column(0)[0].as_py())
        except BaseException as exc:
            failures.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(8):
            pg_ws.engine.replace_table("contact", table, fewer if i % 2 == 0 else every)
    finally:
        done.set()
        for t in readers:
            t.join()
    assert not failures
    assert seen <= {3, len(rows)}


def test_a_cli_evaluation_on_postgres_imports_no_arrow(pg_ws: segmenta.Workspace) -> None:
    """Member keys come straight from the rows (Engine.column): the CLI pays for no pyarrow on PostgreSQL either."""
    import subprocess
    import sys

    segment = CONFORMANCE / "segments" / "never_ordered.json"
    r = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "segmenta",
            "--workspace",
            str(pg_ws.path),
            "segment",
            "evaluate",
            str(segment),
            "--as-of",
            EXPECTED["as_of"],
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == f"{len(EXPECTED['members']['never_ordered'])} members"
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "psycopg" in imported and not {m for m in imported if m.startswith("pyarrow")}
