"""Apache Spark: the same compiled segments at cluster scale.

Tables live as Parquet directories under ``<workspace>/spark-tables/<table>/`` (or any
path every executor can read), one immutable version directory per load plus a
``CURRENT`` pointer swapped atomically, so a reader sees the old rows or the new, never
half a table. A model table may instead name a catalog table (Delta, Iceberg, Hive), for
clusters and Spark Connect. Before a query, each model table is registered as a temp
view of its name; only the member keys come back to the driver, as Arrow.

pyspark is imported lazily, here only, so DuckDB users never need it or Java.
Configuration (``segmenta.yaml``)::

    engine: spark
    spark:
      master: local[2]              # or spark://host:7077, yarn, k8s://... (default local[*])
      remote: sc://host:15002       # Spark Connect instead of master
      tables_path: spark-tables     # relative to the workspace, or an absolute shared path
      tables: {order: main.crm.orders}   # catalog tables, per model table (optional)
      conf: {spark.executor.memory: 4g}  # any further Spark settings
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from segmenta.engines.base import Cancel, Engine
from segmenta.errors import EngineError, SegmentaError, UnsupportedFeature
from segmenta.model.schema import ColumnType, Table

if TYPE_CHECKING:
    from segmenta.types import EventLog, MembershipStore

log = logging.getLogger("segmenta.engine.spark")

POINTER = "CURRENT"
DEFAULT_TABLES_PATH = "spark-tables"
#: Scratch data (``stage``, ``materialise``) under the tables path: beside the tables, never one of them.
STAGED_DIR = ".staged"

#: Settings every session gets: same answers as DuckDB, and quiet.
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    # Model datetimes are naive UTC: literals and Parquet columns are TIMESTAMP_NTZ, no shifting.
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    # Belt and braces with the ARRAY_SIZE rewrite in compiler/dialects.py.
    "spark.sql.legacy.sizeOfNull": "false",
    "spark.sql.ansi.enabled": "true",
}
#: Settings for a session this process starts itself (local mode or a cluster master).
LAUNCH_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.adaptive.enabled": "true",
}

_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs and where the tables live, from ``segmenta.yaml``'s ``spark`` section."""

    master: str = "local[*]"
    remote: str | None = None
    tables_path: str = DEFAULT_TABLES_PATH
    tables: Mapping[str, str] = field(default_factory=dict)
    conf: Mapping[str, str] = field(default_factory=dict)
    app_name: str = "segmenta"

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> SparkSettings:
        """Settings from the ``spark`` mapping (``$SEGMENTA_SPARK_MASTER`` / ``_REMOTE`` applied by :mod:`segmenta.settings`)."""
        raw = dict(config or {})
        known = {"master", "remote", "tables_path", "tables", "conf", "app_name"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SegmentaError(
                f"segmenta.yaml: unknown spark setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        master = raw.get("master") or cls.master
        remote = raw.get("remote")
        tables = {str(k): str(v) for k, v in (raw.get("tables") or {}).items()}
        conf = {str(k): str(v) for k, v in (raw.get("conf") or {}).items()}
        return cls(
            master=str(master),
            remote=str(remote) if remote else None,
            tables_path=str(raw.get("tables_path") or DEFAULT_TABLES_PATH),
            tables=tables,
            conf=conf,
            app_name=str(raw.get("app_name") or cls.app_name),
        )

    @property
    def target(self) -> str:
        return f"remote:{self.remote}" if self.remote else f"master:{self.master}"


# -- the session: one per process -----------------------------------------------------

_session: dict[str, Any] = {}  # target -> the one SparkSession of this process
_lock = threading.Lock()


def _pyspark() -> Any:
    try:
        with warnings.catch_warnings():
            # pyspark probes its optional dependencies once and warns about pandas 3; not ours to show.
            warnings.simplefilter("ignore", FutureWarning)
            import pyspark.sql
            import pyspark.testing.utils  # noqa: F401  (the probe, imported here under the filter)
    except ImportError as exc:
        raise SegmentaError(
            "the Spark engine needs pyspark (and Java 17+): pip install 'segmenta[spark]', or use engine: duckdb"
        ) from exc
    return pyspark.sql


def session(settings: SparkSettings) -> Any:
    """The process's one SparkSession, started on first use for ``settings.target``."""
    with _lock:
        if _session:
            ((target, spark),) = _session.items()
            if target != settings.target:
                raise EngineError(
                    f"this process already runs Spark for {target}; one Spark target per process, not also {settings.target}"
                )
            return spark
        spark = _start(settings)
        _session[settings.target] = spark
        return spark


def _start(settings: SparkSettings) -> Any:
    sql = _pyspark()
    builder = sql.SparkSession.builder.appName(settings.app_name)
    if settings.remote:
        builder = builder.remote(settings.remote)
    else:
        builder = builder.master(settings.master)
        conf = dict(LAUNCH_CONF)
        conf["spark.driver.extraJavaOptions"] += f" -Dlog4j2.configurationFile={_log4j_file()}"
        conf["spark.sql.shuffle.partitions"] = str(_shuffle_partitions(settings.master))
        for key, value in conf.items():
            builder = builder.config(key, value)
    for key, value in {**SESSION_CONF, **settings.conf}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        where = settings.remote or settings.master
        raise EngineError(
            f"could not start Spark ({where}): {exc}; the Spark engine needs Java 17+ on PATH or JAVA_HOME"
        ) from exc
    for key, value in SESSION_CONF.items():  # an existing or remote session keeps its own settings otherwise
        if key not in settings.conf:
            try:
                spark.conf.set(key, value)
            except Exception:  # some managed endpoints pin settings; the dialect rewrites still hold
                log.warning("could not set %s on the Spark session", key)
    if not settings.remote:
        spark.sparkContext.setLogLevel("ERROR")
    log.info("Spark session ready (%s)", settings.target)
    return spark


def stop_session() -> None:
    """Stop the session this process started, if any (tests and benchmarks; the CLI just exits)."""
    with _lock:
        for spark in _session.values():
            spark.stop()
        _session.clear()


def _shuffle_partitions(master: str) -> int:
    """Small for local mode (a shuffle per core or two), Spark's default elsewhere."""
    m = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]|local", master.strip())
    if not m:
        return 200
    cores = (os.cpu_count() or 2) if m.group(1) in (None, "*") else int(m.group(1))
    return max(2, 2 * cores)


def _log4j_file() -> str:
    path = Path(tempfile.gettempdir()) / "segmenta-spark-log4j2.properties"
    if not path.is_file() or path.read_text() != _LOG4J:
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(_LOG4J)
        tmp.replace(path)
    return str(path)


# -- the engine ----------------------------------------------------------------------------


class SparkEngine(Engine):
    """Runs compiled segments on Spark over the workspace's Parquet tables or catalog tables."""

    dialect = "spark"
    #: Spark takes seconds to start any job and runs big segments for minutes (docs/scaling.md).
    statement_timeout_s: float | None = 900.0

    @classmethod
    def open(cls, workspace: Path, section: Any) -> SparkEngine:
        """The workspace's tables on the Spark of the ``spark:`` section (or its checked :class:`SparkSettings`)."""
        settings = section if isinstance(section, SparkSettings) else SparkSettings.from_config(section)
        return cls(workspace, settings)

    def __init__(self, workspace: str | Path, settings: SparkSettings | None = None) -> None:
        self.settings = settings or SparkSettings()
        root = Path(self.settings.tables_path)
        self.root = root if root.is_absolute() else Path(workspace) / root
        self._views: dict[str, str] = {}  # view name -> what it reads (version dir or catalog table)
        self._parquet_views: dict[str, tuple[Callable[[], str], str | None]] = {}  # e.g. saved segments' members
        self._spark: Any = None

    @property
    def spark(self) -> Any:
        """The SparkSession, started on first use (opening a workspace stays cheap)."""
        if self._spark is None:
            self._spark = session(self.settings)
        return self._spark

    def _execute(self, sql: str) -> pa.Table:
        result: pa.Table = self.frame(sql).toArrow()
        return result

    def _prepare(self) -> None:
        self.spark  # noqa: B018 - start the session (once) before the statement's time limit runs

    def _execute_cancellable(self, sql: str, cancel: Cancel) -> pa.Table:
        # Each query's operations carry a tag of their own; at the time limit the timer interrupts
        # that tag (and only it: other requests' queries and the session go on). Tags work on Spark
        # Classic (4.0+) and on Spark Connect alike.
        import uuid

        spark = self.spark
        tag = f"segmenta-{uuid.uuid4().hex}"
        spark.addTag(tag)

        def stop() -> None:
            spark.interruptTag(tag)
            # A collect runs its job on a JVM serving thread that the tag may not reach; the engine
            # serves one request at a time (see Engine.session), so its context's jobs are this query's.
            with contextlib.suppress(Exception):  # Spark Connect has no SparkContext
                spark.sparkContext.cancelAllJobs()

        cancel.on_cancel(stop)
        try:
            return self._execute(sql)
        finally:
            spark.removeTag(tag)

    def frame(self, sql: str) -> Any:
        """The (lazy) DataFrame of ``sql`` over the registered views: nothing runs until it is written or collected."""
        self._register_views()
        return self.spark.sql(sql)

    def register_parquet_view(self, name: str, locate: Callable[[], str], schema: str | None = None) -> None:
        """Make ``name`` a temp view over the Parquet directory ``locate()`` names, resolved before each query.

        The saved segments' store (membership/files.py) registers each segment's members
        this way: ``in_segment`` reads the version committed when the query runs. Nothing starts here.
        """
        self._parquet_views[name] = (locate, schema)

    def forget_view(self, name: str) -> None:
        """Drop a view made by :meth:`register_parquet_view` (its files are going away)."""
        self._parquet_views.pop(name, None)
        if self._views.pop(name, None) is not None:
            self.spark.catalog.dropTempView(name)

    def stage(self, name: str, data: pa.Table) -> exp.Table:
        """``data`` as one Parquet file under the tables path (every executor reads it), as view ``name``."""
        from segmenta.fileio import make_private, private_dir

        path = self._fresh(name)
        private_dir(path)  # e.g. the addresses of an uploaded CSV: the owner's only
        pq.write_table(data, path / "part-00000.parquet")
        make_private(path / "part-00000.parquet")
        self.register_parquet_view(name, lambda: str(path))
        return exp.Table(this=exp.to_identifier(name, quoted=True))

    def materialise(self, name: str, query: exp.Query) -> exp.Table:
        """``query`` run once by Spark into Parquet under the tables path, as view ``name``: its rows stay in Spark."""
        from segmenta.fileio import private_dir

        path = self._fresh(name)
        private_dir(path.parent)
        self.frame(self.sql(query)).write.parquet(str(path))
        self.register_parquet_view(name, lambda: str(path))
        return exp.Table(this=exp.to_identifier(name, quoted=True))

    def drop_staged(self, name: str) -> None:
        self.forget_view(name)
        shutil.rmtree(self._staged(name), ignore_errors=True)

    def _staged(self, name: str) -> Path:
        return self.root / STAGED_DIR / name

    def _fresh(self, name: str) -> Path:
        """A new directory for scratch data ``name``, the old one and its view gone (a view keeps its file list)."""
        self.forget_view(name)
        shutil.rmtree(self._staged(name), ignore_errors=True)
        return self._staged(name) / uuid.uuid4().hex

    def membership_store(self, segment_id: int, key: str, key_type: ColumnType) -> MembershipStore:
        """Parquet versions behind one commit file: Spark has no SQL transactions."""
        from segmenta.membership.files import FileMembership

        return FileMembership(self, segment_id, key, key_type)

    #: No SQL transactions: a record change could not be applied all or nothing.
    supports_record_changes = False

    def event_log(self) -> EventLog:
        """The committed event parts of every segment's files."""
        from segmenta.membership.files import FileEventLog

        return FileEventLog(self)

    def _replace_table(self, name: str, table: Table, data: pa.Table) -> None:
        if name in self.settings.tables:
            self._replace_catalog_table(self.settings.tables[name], data)
        else:
            write_version(self.root / name, data)
        self._views.pop(name, None)

    def _replace_catalog_table(self, target: str, data: pa.Table) -> None:
        # Delta and Iceberg commit an overwrite atomically; plain Hive tables do not (docs/spark.md).
        frame = self.spark.createDataFrame(data)
        frame.write.mode("overwrite").saveAsTable(target)

    def _transaction(self, sqls: list[str], before_commit: Callable[[], None] | None) -> None:
        # Parquet directories have no SQL transactions; saved segments commit through a pointer
        # file instead (membership/files.py), so nothing should land here.
        raise UnsupportedFeature(
            "the Spark engine runs no SQL transactions; saved segments on Spark go through membership/files.py"
        )

    def tables(self) -> set[str]:
        names = {p.parent.name for p in self.root.glob(f"*/{POINTER}")} if self.root.is_dir() else set()
        for name, target in self.settings.tables.items():
            if self.spark.catalog.tableExists(target):
                names.add(name)
        return names

    def close(self) -> None:
        # The session is shared by the process (one per target); only forget our views.
        self._views.clear()
        self._parquet_views.clear()

    def _register_views(self) -> None:
        for name in sorted(self.tables()):
            source = self.settings.tables.get(name) or str(current_version(self.root / name))
            if self._views.get(name) == source:
                continue
            frame = self.spark.table(source) if name in self.settings.tables else self.spark.read.parquet(source)
            frame.createOrReplaceTempView(_quote(name))
            self._views[name] = source
        for name, (locate, schema) in self._parquet_views.items():
            source = locate()
            if self._views.get(name) == source:
                continue
            reader = self.spark.read.schema(schema) if schema else self.spark.read
            reader.parquet(source).createOrReplaceTempView(_quote(name))
            self._views[name] = source


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# -- versioned Parquet directories ---------------------------------------------------------


def current_version(table_dir: Path) -> Path:
    """The version directory ``CURRENT`` points at."""
    return table_dir / (table_dir / POINTER).read_text(encoding="utf-8").strip()


def write_version(table_dir: Path, data: pa.Table, *, rows_per_file: int = 2_000_000) -> Path:
    """Write ``data`` as a new version of the table and point ``CURRENT`` at it (an atomic rename).

    Older versions are removed, except the one just replaced: a reader that read the old
    pointer a moment ago can still finish.
    """
    from segmenta.fileio import make_private, private_dir

    private_dir(table_dir)  # customer records: the owner's only (0700 / 0600)
    version = f"v-{uuid.uuid4().hex}"
    staging = table_dir / f".{version}.tmp"
    staging.mkdir(mode=0o700)
    try:
        for i, start in enumerate(range(0, max(data.num_rows, 1), rows_per_file)):
            part = staging / f"part-{i:05d}.parquet"
            pq.write_table(data.slice(start, rows_per_file), part, row_group_size=256_000)
            make_private(part)
        staging.rename(table_dir / version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = (table_dir / POINTER).read_text(encoding="utf-8").strip() if (table_dir / POINTER).is_file() else None
    pointer_tmp = table_dir / f".{POINTER}.{version}"
    pointer_tmp.write_text(version, encoding="utf-8")
    os.replace(pointer_tmp, table_dir / POINTER)
    for old in table_dir.glob("v-*"):
        if old.name not in (version, previous):
            shutil.rmtree(old, ignore_errors=True)
    return table_dir / version
