"""PostgreSQL: segment where the data already lives.

The compiled segments run unchanged (the compiler already renders PostgreSQL); this
module only connects, stages Arrow data and turns result rows back into Arrow.

Each workspace has schemas of its own in the database, so several workspaces can share
one: ``<schema>`` (default ``segmenta_<id>``, recorded by ``init``) for the tables segmenta
owns (``load``), and ``<schema>_meta`` for membership, history and staged data. The
model's tables can instead be the user's existing tables: ``tables_schema`` puts a schema
of theirs on the search path behind segmenta's own, and ``tables`` maps single model
tables to any table or view (as views in segmenta's schema). segmenta only reads those,
and ``load`` refuses to replace them. Configuration (``segmenta.yaml``)::

    engine: postgres
    postgres:
      url: postgresql://user@host:5432/db   # $SEGMENTA_POSTGRES_URL overrides
      schema: segmenta_1a2b3c4d5e6f         # segmenta's own schema (init writes it)
      tables_schema: crm                    # the model's tables, read-only (optional)
      tables: {order: sales.orders}         # per model table (optional)
      pool_size: 4                          # connections shared by concurrent requests

Connections come from a small thread-safe pool (psycopg_pool is not a dependency): every
query takes one for its duration and every transaction one for all its statements, so
the service runs requests concurrently on one engine. A connection the server closed
while it sat idle is replaced (a query runs once more; a transaction checks first). The
statement timeout cancels the query on its own connection. Connections show
``application_name = 'segmenta <schema>'`` in ``pg_stat_activity``. psycopg 3 is
imported here only, pyarrow only where Arrow is built.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.engines.base import Cancel, Engine
from segmenta.engines.sqltypes import arrow_column_type, sql_type
from segmenta.errors import EngineError, Problem, RejectedInput
from segmenta.model.schema import Table

if TYPE_CHECKING:
    import pyarrow as pa  # imported where Arrow is built: an evaluation fetches plain keys (CLI start-up)

log = logging.getLogger("segmenta.engine.postgres")

URL_ENV = "SEGMENTA_POSTGRES_URL"
META_SUFFIX = "_meta"
POOL_SIZES = range(1, 65)
#: How long a request waits for a free connection before it is an error.
POOL_WAIT_SECONDS = 30.0


@cache
def _arrow_by_oid() -> dict[int, pa.DataType]:
    """Result column types by PostgreSQL type OID, so that an empty result keeps its types."""
    import pyarrow as pa

    return {
        16: pa.bool_(),
        20: pa.int64(),
        21: pa.int16(),
        23: pa.int32(),
        25: pa.string(),
        700: pa.float32(),
        701: pa.float64(),
        1009: pa.list_(pa.string()),
        1015: pa.list_(pa.string()),
        1043: pa.string(),
        1082: pa.date32(),
        1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
    }


_NUMERIC_OID = 1700

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_SETTINGS = ("url", "schema", "tables_schema", "tables", "pool_size")


def _bad(key: str, message: str) -> RejectedInput:
    return RejectedInput([Problem(f"segmenta.yaml: postgres.{key}", message)])


def default_schema(workspace: Path) -> str:
    """A workspace's own schema when none is recorded: stable for its directory."""
    digest = hashlib.sha1(str(workspace.resolve()).encode()).hexdigest()[:12]
    return f"segmenta_{digest}"


@dataclass(frozen=True)
class PostgresSettings:
    """The server and the schemas of one workspace, from ``segmenta.yaml``'s ``postgres`` section."""

    url: str
    schema: str
    tables_schema: str | None = None
    tables: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    pool_size: int = 4
    #: Where the URL came from, for messages: the environment variable or the setting.
    url_source: str = "postgres.url"

    @property
    def meta_schema(self) -> str:
        return self.schema + META_SUFFIX

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, *, workspace: Path, url_source: str | None = None) -> PostgresSettings:
        """Checked settings; a bad one raises :class:`RejectedInput` naming its key and what would be right.

        ``config`` is the section with ``$SEGMENTA_POSTGRES_URL`` already applied (:mod:`segmenta.settings`);
        ``url_source`` says where the URL came from when not from the file (``$SEGMENTA_POSTGRES_URL``).
        """
        if config is not None and not isinstance(config, Mapping):
            raise RejectedInput([Problem("segmenta.yaml: postgres", "must be a mapping of settings such as url: and schema:")])
        raw = dict(config or {})
        unknown = sorted(set(raw) - set(_SETTINGS))
        if unknown:
            raise RejectedInput(
                [Problem(f"segmenta.yaml: postgres.{k}", f"unknown setting; known: {', '.join(_SETTINGS)}") for k in unknown]
            )
        url, source = raw.get("url"), url_source or "postgres.url"
        if not url or not isinstance(url, str) or not url.strip():
            raise RejectedInput(
                [
                    Problem(
                        "segmenta.yaml: postgres.url",
                        f"the postgres engine needs a server: set ${URL_ENV} or postgres.url, "
                        "e.g. postgresql://user@127.0.0.1:5432/dbname",
                    )
                ]
            )
        _check_url(url.strip(), source)
        schema = raw.get("schema") or default_schema(workspace)
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema) or len(schema) > 63 - len(META_SUFFIX):
            raise _bad(
                "schema",
                f"{schema!r} is not a schema name segmenta can own: lower-case letters, digits and _, "
                f"starting with a letter or _, at most {63 - len(META_SUFFIX)} characters",
            )
        tables_schema = raw.get("tables_schema")
        if tables_schema is not None and (not isinstance(tables_schema, str) or not tables_schema.strip()):
            raise _bad("tables_schema", f"{tables_schema!r} is not a schema name; name the schema that holds the tables")
        if tables_schema in (schema, schema + META_SUFFIX):
            raise _bad("tables_schema", f"{tables_schema!r} is segmenta's own schema; name the schema of your tables")
        tables: dict[str, tuple[str, str]] = {}
        raw_tables = raw.get("tables") or {}
        if not isinstance(raw_tables, Mapping):
            raise _bad("tables", "must map model tables to schema.table, e.g. {order: sales.orders}")
        for name, target in raw_tables.items():
            parts = str(target).split(".") if isinstance(target, str) else []
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise _bad(f"tables.{name}", f"{target!r} is not schema.table; write it as e.g. sales.orders")
            tables[str(name)] = (parts[0].strip(), parts[1].strip())
        pool_size = raw.get("pool_size", cls.pool_size)
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size not in POOL_SIZES:
            raise _bad("pool_size", f"{pool_size!r} is not a whole number from {POOL_SIZES[0]} to {POOL_SIZES[-1]}")
        return cls(
            url=url.strip(),
            schema=schema,
            tables_schema=tables_schema.strip() if tables_schema else None,
            tables=tables,
            pool_size=pool_size,
            url_source=source,
        )


def _check_url(url: str, source: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    where = source if source.startswith("$") else f"segmenta.yaml: {source}"
    if not url.startswith(("postgresql://", "postgres://")) and "=" not in url:
        raise RejectedInput([Problem(where, "is not a PostgreSQL URL; write it as postgresql://user@host:5432/dbname")])
    try:
        conninfo_to_dict(url)
    except Exception:  # the parser's message may quote the URL, password included: not repeated here
        raise RejectedInput([Problem(where, "is not a PostgreSQL URL; write it as postgresql://user@host:5432/dbname")]) from None


def _safe_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "(unparseable URL)"
    return f"{parts.get('user', '')}@{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


class _Pool:
    """At most ``size`` open connections, handed to one thread at a time and reused."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self._connect = connect
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._size = size

    @contextmanager
    def connection(self, *, ping: bool = False) -> Iterator[Any]:
        """A connection for the caller alone; ``ping`` first checks a reused one still reaches the server."""
        if not self._slots.acquire(timeout=POOL_WAIT_SECONDS):
            raise EngineError(f"all {self._size} PostgreSQL connections stayed busy for {POOL_WAIT_SECONDS:.0f} s")
        conn = None
        try:
            with self._lock:
                while self._idle and conn is None:
                    candidate = self._idle.pop()
                    if candidate.closed or candidate.broken:
                        candidate.close()
                    else:
                        conn = candidate
            if conn is not None and ping and not _alive(conn):
                conn.close()
                conn = None
            if conn is None:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                self._give_back(conn)
            self._slots.release()

    def _give_back(self, conn: Any) -> None:
        from psycopg.pq import TransactionStatus

        if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()  # a connection left mid-transaction (an interrupt) is not reused
            return
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _alive(conn: Any) -> bool:
    """Whether an idle pooled connection still reaches the server (it may have closed it meanwhile)."""
    import psycopg

    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


class PostgresEngine(Engine):
    """Runs compiled segments on a PostgreSQL server, over segmenta's tables or the user's."""

    dialect = "postgres"

    @classmethod
    def open(cls, workspace: Path, section: Any) -> PostgresEngine:
        """The workspace's schemas on the server of the ``postgres:`` section (or its checked :class:`PostgresSettings`)."""
        settings = (
            section if isinstance(section, PostgresSettings) else PostgresSettings.from_config(section, workspace=workspace)
        )
        return cls(settings)

    @classmethod
    def workspace_settings(cls, workspace_config: Mapping[str, Any]) -> dict[str, Any]:
        """A schema of its own per new workspace, recorded so that moving the directory moves nothing."""
        import uuid

        section = super().workspace_settings(workspace_config)
        section.setdefault("schema", f"segmenta_{uuid.uuid4().hex[:12]}")
        return section

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.schema = settings.schema
        self.meta_schema = settings.meta_schema
        self._pool = _Pool(self._connect, settings.pool_size)
        self._prepared = False
        self._prepare_lock = threading.Lock()
        self._created: set[str] = set()  # the schemas this engine made (see discard)

    # -- connections ---------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg

        try:
            # application_name shows a DBA which workspace holds a connection (pg_stat_activity).
            conn = psycopg.connect(
                self.settings.url, autocommit=True, connect_timeout=10, application_name=f"segmenta {self.schema}"
            )
        except psycopg.Error as exc:
            raise EngineError(
                f"cannot connect to PostgreSQL at {_safe_url(self.settings.url)} "
                f"(from {self.settings.url_source}): {str(exc).strip()}"
            ) from None
        path = [self.schema] + ([self.settings.tables_schema] if self.settings.tables_schema else [])
        try:
            conn.execute(
                "SELECT set_config('TimeZone', 'UTC', false), set_config('search_path', %s, false)", [_search_path(path)]
            )
            if not self._prepared:
                with self._prepare_lock:
                    if not self._prepared:
                        self._prepare_schemas(conn)
                        self._prepared = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare_schemas(self, conn: Any) -> None:
        """segmenta's schemas, and a view per table mapped by ``postgres.tables``; one workspace at a time."""
        statements: list[exp.Expr] = [
            exp.Create(this=exp.Table(this=_ident(s)), kind="SCHEMA", exists=True) for s in (self.schema, self.meta_schema)
        ]
        for name, (schema, table) in self.settings.tables.items():
            view = exp.Table(this=_ident(name), db=_ident(self.schema))
            source = exp.select(exp.Star()).from_(exp.Table(this=_ident(table), db=_ident(schema)))
            statements.append(exp.Create(this=view, kind="VIEW", replace=True, expression=source))
        import psycopg

        with conn.transaction():
            # Two processes opening the same new workspace would race on CREATE SCHEMA.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.schema])
            existing = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [[self.schema, self.meta_schema]]
            ).fetchall()
            self._created = {self.schema, self.meta_schema} - {r[0] for r in existing}
            for statement in statements[:2]:
                conn.execute(statement.sql(dialect="postgres"))
            for (name, (schema, table)), statement in zip(self.settings.tables.items(), statements[2:], strict=True):
                try:
                    with conn.transaction():
                        conn.execute(statement.sql(dialect="postgres"))
                except psycopg.Error as exc:
                    raise EngineError(
                        f"segmenta.yaml: postgres.tables.{name}: cannot read {schema}.{table} "
                        f"({str(exc).strip().splitlines()[0]}); name an existing table this user may SELECT from"
                    ) from None

    @contextmanager
    def connection(self, *, ping: bool = False) -> Iterator[Any]:
        """A pooled psycopg connection (autocommit; ``search_path`` on this workspace's tables).

        ``ping`` (for transactions, which cannot simply be run again) checks a reused connection first.
        """
        with self._pool.connection(ping=ping) as conn:
            yield conn

    # -- the engine hooks ---------------------------------------------------------------

    def _execute(self, sql: str) -> pa.Table:
        return self._execute_cancellable(sql, None)

    def _execute_cancellable(self, sql: str, cancel: Cancel | None) -> pa.Table:
        def arrow(cur: Any) -> pa.Table:
            import pyarrow as pa

            return pa.table({}) if cur.description is None else _arrow(cur.description, cur.fetchall())

        result: pa.Table = self._fetch(sql, cancel, arrow)
        return result

    def _column_cancellable(self, sql: str, cancel: Cancel) -> list[Any]:
        # Member keys straight from the rows: no Arrow (nor its import) for an evaluation.
        keys: list[Any] = self._fetch(sql, cancel, lambda cur: [row[0] for row in cur.fetchall()])
        return keys

    def _fetch(self, sql: str, cancel: Cancel | None, result: Callable[[Any], Any]) -> Any:
        """``result(cursor)`` after running ``sql`` on a pooled connection, cancellable at the time limit.

        At the limit the server cancels exactly this statement on its connection, which then
        serves the next query (an autocommit connection holds no transaction to undo). The stop is
        disarmed before the connection goes back to the pool: the :class:`Cancel` re-fires until
        its caller closes it, and by then the pool may have handed this connection to the next
        request, whose statement it would cancel.
        """
        import psycopg

        for attempt in (1, 2):
            with self.connection() as conn, conn.cursor() as cur:
                stop = _Stop(conn)
                if cancel is not None:
                    cancel.on_cancel(stop)
                try:
                    cur.execute(sql)
                except psycopg.OperationalError:
                    # An idle pooled connection the server has since closed (restart, idle timeout,
                    # a DBA's pg_terminate_backend): the statement never ran; once more on a new one.
                    if attempt == 1 and conn.broken and not (cancel is not None and cancel.fired):
                        continue
                    raise
                else:
                    return result(cur)
                finally:
                    stop.disarm()
        raise AssertionError("unreachable")

    def stream(self, query: exp.Expr, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The rows of ``query`` in batches from a server-side cursor: memory for one batch, not the result."""
        sql = self.sql(query)
        try:
            with self.connection(ping=True) as conn, conn.transaction(), conn.cursor(name="segmenta_stream") as cur:
                cur.itersize = batch_size
                cur.execute(sql)
                while rows := cur.fetchmany(batch_size):
                    yield from _arrow(cur.description, rows).to_batches(max_chunksize=batch_size)
        except EngineError:
            raise
        except Exception as exc:  # as run() does: the SQL that failed, once
            raise EngineError(f"PostgresEngine failed: {exc}", sql=sql) from exc

    def _transaction(self, sqls: list[str], before_commit: Callable[[], None] | None) -> None:
        with self.connection(ping=True) as conn, conn.transaction():
            for sql in sqls:
                conn.execute(sql)
            if before_commit is not None:
                before_commit()

    def serialise(self, topic: str) -> list[exp.Expr]:
        """A transaction-level advisory lock per (meta schema, topic): let go at commit or rollback, a crash included.

        On READ COMMITTED two writes of one segment at once would each compute their changes
        against the same old members; the second now waits until the first has committed.
        """
        digest = hashlib.sha256(f"segmenta {self.meta_schema} {topic}".encode()).digest()
        number = int.from_bytes(digest[:8], "big", signed=True)
        return [exp.select(exp.Anonymous(this="pg_advisory_xact_lock", expressions=[exp.Literal.number(number)]))]

    def read_only_reason(self, name: str) -> str | None:
        external = self._external(name)
        if external is None:
            return None
        setting = "postgres.tables" if name in self.settings.tables else "postgres.tables_schema"
        return (
            f"is read from your table {external} ({setting}); segmenta only reads it: "
            f"change it there, or remove it from {setting} to let segmenta own the table"
        )

    def _external(self, name: str) -> str | None:
        """``schema.table`` when model table ``name`` is the user's table rather than segmenta's."""
        if name in self.settings.tables:
            return ".".join(self.settings.tables[name])
        if self.settings.tables_schema and name not in self._owned() and name in self._tables_in(self.settings.tables_schema):
            return f"{self.settings.tables_schema}.{name}"
        return None

    def _replace_table(self, name: str, table: Table, data: pa.Table) -> None:
        reason = self.read_only_reason(name)
        if reason is not None:
            raise RejectedInput([Problem(name, reason)])
        columns = [exp.ColumnDef(this=_ident(c), kind=sql_type(col.type)) for c, col in table.columns.items()]
        target = exp.Table(this=_ident(name), db=_ident(self.schema))
        with self.connection(ping=True) as conn, conn.transaction():
            # Readers wait for the commit and then see the new rows: DROP and CREATE are transactional here.
            conn.execute(exp.Drop(tables=[target.copy()], kind="TABLE", exists=True).sql(dialect="postgres"))
            conn.execute(
                exp.Create(this=exp.Schema(this=target.copy(), expressions=columns), kind="TABLE").sql(dialect="postgres")
            )
            _copy_in(conn, target, data.select(list(table.columns)))
            # Fresh statistics, so that the first segment after a load is planned on the real row counts.
            conn.execute(f"ANALYZE {target.sql(dialect='postgres')}")

    def stage(self, name: str, data: pa.Table) -> exp.Table:
        """Put ``data`` in table ``name`` of the meta schema (replacing it) and return that table, for SQL to join."""
        target = exp.Table(this=_ident(name), db=_ident(self.meta_schema))
        columns = [exp.ColumnDef(this=_ident(f.name), kind=sql_type(arrow_column_type(f.type))) for f in data.schema]
        try:
            with self.connection(ping=True) as conn, conn.transaction():
                conn.execute(exp.Drop(tables=[target.copy()], kind="TABLE", exists=True).sql(dialect="postgres"))
                conn.execute(
                    exp.Create(this=exp.Schema(this=target.copy(), expressions=columns), kind="TABLE").sql(dialect="postgres")
                )
                _copy_in(conn, target, data)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"PostgresEngine could not stage {name!r}: {exc}") from exc
        return target

    def materialise(self, name: str, query: exp.Query) -> exp.Table:
        """The rows of ``query`` as table ``name`` of the meta schema (replacing it), beside the staged data."""
        target = exp.Table(this=_ident(name), db=_ident(self.meta_schema))
        self.execute(
            [
                exp.Drop(tables=[target.copy()], kind="TABLE", exists=True),
                exp.Create(this=target.copy(), kind="TABLE", expression=query.copy()),
            ]
        )
        return target

    def drop_staged(self, name: str) -> None:
        """Drop a table :meth:`stage` or :meth:`materialise` made; no error if it is gone."""
        target = exp.Table(this=_ident(name), db=_ident(self.meta_schema))
        self.run(exp.Drop(tables=[target], kind="TABLE", exists=True))

    @contextmanager
    def session(self) -> Iterator[PostgresEngine]:
        """The engine for one request: this one, since every call takes its own pooled connection."""
        yield self

    def tables(self) -> set[str]:
        names = self._owned()
        if self.settings.tables_schema:
            names |= self._tables_in(self.settings.tables_schema)
        return names | set(self.settings.tables)

    def _owned(self) -> set[str]:
        return self._tables_in(self.schema) - set(self.settings.tables)

    def _tables_in(self, schema: str) -> set[str]:
        q = (
            exp.select("table_name")
            .from_(exp.Table(this=_ident("tables"), db=_ident("information_schema")))
            .where(exp.column("table_schema").eq(exp.Literal.string(schema)))
        )
        return {r["table_name"] for r in self.run(q).to_pylist()}

    def discard(self) -> None:
        """Drop the schemas this engine created (a failed ``init``); schemas that were there before stay."""
        if self._created == {self.schema, self.meta_schema}:
            self.drop_schemas()

    def drop_schemas(self) -> None:
        """Remove everything this workspace keeps in the database (its own two schemas; never the user's tables)."""
        statements = [
            exp.Drop(tables=[exp.Table(this=_ident(s))], kind="SCHEMA", exists=True, cascade=True)
            for s in (self.meta_schema, self.schema)
        ]
        with self.connection(ping=True) as conn, conn.transaction():
            for statement in statements:
                conn.execute(statement.sql(dialect="postgres"))
        self._prepared = False

    def close(self) -> None:
        self._pool.close()


def _search_path(schemas: list[str]) -> str:
    return ", ".join('"' + s.replace('"', '""') + '"' for s in schemas)


def _arrow(description: Any, rows: list[tuple[Any, ...]]) -> pa.Table:
    """Result rows as Arrow, typed by the columns' PostgreSQL types (so that no rows keep their types)."""
    import pyarrow as pa

    names = [d.name for d in description]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for d, values in zip(description, columns, strict=True):
        arrow_type = _arrow_by_oid().get(d.type_code)
        if d.type_code == _NUMERIC_OID:
            arrow_type = None if any(v is not None for v in values) else pa.decimal128(38, 10)
        arrays.append(pa.array(values, type=arrow_type))
    # Duplicate column names are legal in SQL results: build from arrays, not a dict.
    return pa.Table.from_arrays(arrays, names=names)


def _copy_in(conn: Any, target: exp.Table, data: pa.Table) -> None:
    """COPY ``data`` into ``target`` as CSV written by Arrow (no Python loop over rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if data.num_rows == 0:
        return
    columns = []
    for column in data.columns:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = _array_literals(column)
        elif pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit))
        columns.append(column)
    # one chunk per column: Arrow's CSV writer wrote a NUL byte for a table whose first chunk was empty
    # (the old versions of an insert), which PostgreSQL refuses as "invalid byte sequence 0x00"
    text = pa.Table.from_arrays(columns, names=data.column_names).combine_chunks()
    buffer = io.BytesIO()
    # Every value quoted, nulls bare: PostgreSQL's CSV reads "" as an empty string and nothing as NULL.
    pacsv.write_csv(text, buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    names = ", ".join(_ident(c).sql(dialect="postgres") for c in data.column_names)
    copy = f"COPY {target.sql(dialect='postgres')} ({names}) FROM STDIN (FORMAT csv)"
    with conn.cursor() as cur, cur.copy(copy) as sink:
        view = buffer.getbuffer()
        for start in range(0, len(view), 1 << 20):
            sink.write(view[start : start + (1 << 20)])


def _array_literals(column: pa.ChunkedArray) -> pa.Array:
    """A list-of-strings column as PostgreSQL array literals: ``{"golf","wine"}``, ``{}`` for an empty list."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks()
    if isinstance(array, pa.LargeListArray):
        array = array.cast(pa.list_(pa.string()))
    values = pc.cast(array.values, pa.string())
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    quoted = pc.binary_join_element_wise('"', escaped, '"', "")
    # A null element inside a list is a NULL array element.
    quoted = pc.if_else(pc.is_null(values), pa.scalar("NULL"), quoted)
    lists = pa.ListArray.from_arrays(array.offsets, quoted, mask=array.is_null())
    joined = pc.binary_join(lists, ",")
    return pc.if_else(pc.is_null(lists), pa.scalar(None, pa.string()), pc.binary_join_element_wise("{", joined, "}", ""))


class _Stop:
    """Cancels the statement on ``conn`` until :meth:`disarm`; then never again (the connection may serve another)."""

    def __init__(self, conn: Any) -> None:
        self._conn: Any = conn
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:  # disarm() waits for a cancel under way, so none lands after it
            if self._conn is not None:
                self._conn.cancel_safe()

    def disarm(self) -> None:
        with self._lock:
            self._conn = None
