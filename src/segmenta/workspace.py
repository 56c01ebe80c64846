"""The library entry point: a workspace directory holding a model, its data and metadata.

Example::

    import segmenta
    ws = segmenta.Workspace.init("crm", model="model.yaml")
    ws.load("contact", "contact.csv")
    keys = ws.evaluate("segments/gold.json", as_of="2026-10-27T12:00:00").keys
    print(ws.sql("segments/gold.json", dialect="spark"))

The CLI is a thin layer over these methods; the service and notebooks use them too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlglot import exp

from segmenta import clock
from segmenta.compiler.compile import SegmentSource, compile_definition
from segmenta.engines.base import Engine
from segmenta.engines.select import make_engine, new_workspace_config
from segmenta.errors import DefinitionError, NotFound, Problem, RejectedInput
from segmenta.fileio import make_private, private_dir
from segmenta.model.definition import Definition
from segmenta.model.schema import Model
from segmenta.model.validate import DEFAULT_LIMITS, DefinitionLimits, load_definition_text, parse_definition
from segmenta.settings import Settings, load_settings

if TYPE_CHECKING:
    import pyarrow as pa

MODEL_FILE = "model.yaml"
CONFIG_FILE = "segmenta.yaml"
DATA_FILE = "data.duckdb"
PII_MASK = "***"

DefinitionLike = Definition | Mapping[str, Any] | str | Path


def default_workspace() -> Path:
    """``$SEGMENTA_WORKSPACE``, else ``./segmenta-workspace`` (read by :mod:`segmenta.settings`)."""
    from segmenta import settings

    return settings.default_workspace()


@dataclass(frozen=True)
class Evaluation:
    """The members of one evaluation: ``keys`` ascending, the audience ``key`` name and the SQL run."""

    audience: str
    key: str
    keys: list[Any]
    as_of: dt.datetime
    sql: str

    @property
    def count(self) -> int:
        return len(self.keys)

    def to_arrow(self) -> pa.Table:
        import pyarrow as pa

        return pa.table({self.key: self.keys})


@dataclass(frozen=True)
class Preview:
    """A member count and the first members with chosen columns (PII masked unless asked)."""

    count: int
    columns: list[str]
    rows: list[dict[str, Any]]
    masked: list[str]


class Workspace:
    """A directory with ``model.yaml``, ``segmenta.yaml`` and the data (``data.duckdb``, or on the engine's server)."""

    def __init__(
        self, path: Path, model: Model, engine: Engine, config: dict[str, Any], *, settings: Settings | None = None
    ) -> None:
        self.path = path
        self.model = model
        self.engine = engine
        #: The settings as a plain mapping (segmenta.yaml's shape, environment and flags applied).
        self.config = config
        self._settings = settings
        #: Bounds of a definition (``limits:`` in segmenta.yaml); pass them to every parse_definition.
        self.limits = DefinitionLimits.from_config(config.get("limits"))
        #: Resolves ``in_segment``: the stored membership of a live saved segment, wired by the
        #: services (``Segments``; ``services.stores.with_saved_segments`` for the CLI), since the
        #: facade imports no service. None: ``in_segment`` is refused with a clear error.
        self.segment_source: SegmentSource | None = None

    # -- opening ---------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | Path,
        *,
        model: str | Path | Model | None = None,
        sample: bool = False,
        contacts: int = 10_000,
        seed: int = 42,
        progress: Callable[[str, int, int], None] | None = None,
        engine: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Workspace:
        """Create a workspace; with ``sample`` it holds a generated CRM of ``contacts`` contacts.

        ``engine`` (``duckdb`` by default, ``spark`` or ``postgres``) is recorded in ``segmenta.yaml``,
        with ``settings`` (e.g. ``{"postgres": {"url": ..., "tables_schema": "crm"}}``). A
        ``segmenta.yaml`` already in the directory is kept and completed, so that settings
        can be written before ``init``. On ``postgres`` the workspace's own schema is recorded.
        """
        from segmenta import sample as sample_data

        path = Path(path)
        if (path / MODEL_FILE).exists():
            raise RejectedInput(
                [Problem(str(path), "already holds a segmenta workspace; choose another directory or remove it first")]
            )
        if sample and model is not None:
            raise RejectedInput("--sample builds its own model; leave out --model, or load your data into a --model workspace")
        if model is None:
            chosen = sample_data.sample_model()
        elif isinstance(model, Model):
            chosen = model
        else:
            chosen = Model.from_file(model)
        if sample and contacts < 1:
            raise RejectedInput(f"--contacts must be at least 1, not {contacts}")
        config, previous = _initial_config(path / CONFIG_FILE, settings, engine)
        created = not path.exists()
        private_dir(path)  # 0700: the store holds password hashes and tokens, the data customer records
        ws: Workspace | None = None
        try:
            (path / MODEL_FILE).write_text(yaml.safe_dump(chosen.to_data(), sort_keys=False), encoding="utf-8")
            (path / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            make_private(path / MODEL_FILE)
            make_private(path / CONFIG_FILE)
            ws = cls.open(path)
            for name, table in chosen.tables.items():
                if name not in ws.engine.tables():
                    ws.engine.replace_table(name, table, _empty(table))
            if sample:
                sample_data.generate(ws, contacts=contacts, seed=seed, progress=progress)
        except BaseException:
            if ws is not None:  # what the engine made outside the directory (PostgreSQL: its schemas)
                with contextlib.suppress(Exception):  # the error that stopped init is the one to report
                    ws.engine.discard()
                ws.close()
            if created:
                shutil.rmtree(path, ignore_errors=True)
            else:
                for f in (MODEL_FILE, CONFIG_FILE, DATA_FILE, DATA_FILE + ".wal"):
                    (path / f).unlink(missing_ok=True)
                if previous is not None:  # the user's own settings file stays as it was
                    (path / CONFIG_FILE).write_text(previous, encoding="utf-8")
                shutil.rmtree(path / "spark-tables", ignore_errors=True)
            raise
        return ws

    @property
    def settings(self) -> Settings:
        """The typed settings (:mod:`segmenta.settings`), from the opener or else from :attr:`config`."""
        if self._settings is None:
            from segmenta import settings

            self._settings = settings.from_config(self.path, self.config)
        return self._settings

    @classmethod
    def open(cls, path: str | Path | None = None, *, engine: str | None = None, settings: Settings | None = None) -> Workspace:
        """Open an existing workspace (default: :func:`default_workspace`); ``engine`` overrides ``segmenta.yaml``.

        ``settings`` (a composition root's :func:`~segmenta.settings.load_settings`) saves reading them again.
        """
        if path is None:
            path = settings.workspace if settings is not None else default_workspace()
        path = Path(path)
        if not (path / MODEL_FILE).is_file():
            raise NotFound([Problem(str(path), "is not a segmenta workspace (no model.yaml); create it with 'segmenta init'")])
        model = Model.from_file(path / MODEL_FILE)
        if settings is None or settings.workspace != path or (engine is not None and engine != settings.engine):
            settings = load_settings(path, engine=engine, store=settings.store if settings is not None else None)
        return cls(path, model, make_engine(path, settings.config, settings=settings), settings.config, settings=settings)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- data ------------------------------------------------------------------------

    def load(self, table: str, file: str | Path) -> int:
        """Replace ``table``'s rows with the file's (.csv or .parquet); all or nothing. Returns the row count."""
        if table not in self.model.tables:
            from segmenta.model.schema import hint

            raise NotFound(
                [Problem(table, f"unknown table{hint(table, self.model.tables)}; tables: {', '.join(self.model.tables)}")]
            )
        refused = self.engine.read_only_reason(table)
        if refused is not None:
            raise RejectedInput([Problem(table, refused)])
        from segmenta.engines.ingest import read_table_file  # pyarrow's CSV and Parquet readers: only for load

        data = read_table_file(file, table, self.model.table(table))
        self.engine.replace_table(table, self.model.table(table), data)
        return data.num_rows

    # -- definitions ------------------------------------------------------------------

    def definition(self, source: DefinitionLike) -> Definition:
        """Parse and validate a definition from a file path, JSON/YAML text, plain data or a Definition."""
        if isinstance(source, Definition):
            return source
        return parse_definition(read_definition(source, limits=self.limits), self.model, limits=self.limits)

    def compile(self, source: DefinitionLike, *, as_of: dt.datetime | str | None = None) -> exp.Select:
        """The sqlglot tree selecting the members' keys."""
        return compile_definition(self.definition(source), self.model, as_of=_as_of(as_of), segments=self.segment_source)

    def sql(
        self, source: DefinitionLike, *, dialect: str = "duckdb", as_of: dt.datetime | str | None = None, pretty: bool = True
    ) -> str:
        """The member query in any sqlglot dialect (duckdb, spark, postgres, snowflake, bigquery, ...)."""
        from segmenta.compiler.dialects import render

        return render(self.compile(source, as_of=as_of), dialect=dialect, pretty=pretty)

    def evaluate(self, source: DefinitionLike, *, as_of: dt.datetime | str | None = None) -> Evaluation:
        """Evaluate a definition; the members' keys ascending."""
        definition = self.definition(source)
        moment = _as_of(as_of)
        query = compile_definition(definition, self.model, as_of=moment, segments=self.segment_source)
        sql = self.engine.sql(query)  # rendered once: run and reported as the same text
        keys = self.engine.column(sql)  # Python values: evaluate imports no Arrow (CLI start-up)
        key = self.model.table(definition.audience).key
        return Evaluation(audience=definition.audience, key=key, keys=keys, as_of=moment, sql=sql)

    def preview(
        self,
        source: DefinitionLike,
        *,
        limit: int = 10,
        columns: Sequence[str] | None = None,
        show_pii: bool = False,
        as_of: dt.datetime | str | None = None,
    ) -> Preview:
        """The member count and the first ``limit`` members with ``columns``; PII columns masked unless ``show_pii``."""
        definition = self.definition(source)
        table = self.model.table(definition.audience)
        chosen = list(columns) if columns else [c for c, col in table.columns.items() if not col.pii][:6]
        if table.key not in chosen:
            chosen.insert(0, table.key)
        unknown = [c for c in chosen if c not in table.columns]
        if unknown:
            from segmenta.model.schema import hint

            raise RejectedInput(
                [Problem("--columns", f"{definition.audience!r} has no column {c!r}{hint(c, table.columns)}") for c in unknown]
            )
        query = compile_definition(definition, self.model, as_of=_as_of(as_of), segments=self.segment_source)
        query.set("order", None)  # membership only; the preview orders its own rows
        members = query.subquery("m")
        alias = "p"
        count_q = exp.select(exp.Count(this=exp.Star())).from_(members.copy())
        count = self.engine.run(count_q).column(0)[0].as_py()
        masked = [c for c in chosen if table.column(c).pii and not show_pii]
        rows_q = (
            exp.select(*[exp.column(c, table=alias, quoted=True) for c in chosen])
            .from_(
                exp.Table(
                    this=exp.to_identifier(definition.audience, quoted=True), alias=exp.TableAlias(this=exp.to_identifier(alias))
                )
            )
            .where(exp.In(this=exp.column(table.key, table=alias, quoted=True), query=query.copy().subquery()))
            .order_by(exp.column(table.key, table=alias, quoted=True))
            .limit(max(0, limit))
        )
        rows = self.engine.run(rows_q).to_pylist()
        for row in rows:
            for c in masked:
                if row[c] is not None:
                    row[c] = PII_MASK
        return Preview(count=count, columns=chosen, rows=rows, masked=masked)


def read_definition(source: Path | str | Mapping[str, Any], *, limits: DefinitionLimits = DEFAULT_LIMITS) -> Any:
    """The raw data of a definition given as a file path, JSON/YAML text or plain data (not yet validated)."""
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "audience", "name"))):
        p = Path(source)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise DefinitionError([Problem(str(p), f"cannot read the definition: {exc.strerror}")]) from None
        return load_definition_text(text, source=str(p), limits=limits)
    if isinstance(source, str):
        return load_definition_text(source, limits=limits)
    return source


def _as_of(value: dt.datetime | str | None) -> dt.datetime:
    if value is None:
        return clock.now()
    if isinstance(value, str):
        return clock.parse_instant(value, what="--as-of")
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _initial_config(path: Path, settings: Mapping[str, Any] | None, engine: str | None) -> tuple[dict[str, Any], str | None]:
    """The settings a new workspace records, and the text of a ``segmenta.yaml`` that was there before."""
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    config: dict[str, Any] = {}
    if previous is not None:
        loaded = yaml.safe_load(previous) or {}
        if not isinstance(loaded, dict):
            raise RejectedInput([Problem(str(path), "must be a mapping of settings (engine:, postgres:, ...)")])
        config = loaded
    for key, value in (settings or {}).items():
        config[key] = {**config[key], **value} if isinstance(value, Mapping) and isinstance(config.get(key), dict) else value
    return new_workspace_config(config, engine), previous


def _empty(table: Any) -> pa.Table:
    from segmenta.engines.ingest import arrow_schema

    return arrow_schema(table).empty_table()
