"""Opening the metadata store: URL resolution, engine, schema upgrade (Alembic), sessions.

The store is SQLite (``W/store.sqlite``) by default, or PostgreSQL by URL: the setting
``store`` (:mod:`segmenta.settings`: the global ``segmenta --store URL`` option, else
``$SEGMENTA_STORE_URL``, else ``store:`` in the workspace's ``segmenta.yaml``). ``postgresql://`` and ``postgres://`` URLs use psycopg 3.
Opening a store upgrades its schema to the newest revision first, so a store written by
an older segmenta opens in a newer one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from segmenta.errors import Problem, RejectedInput

STORE_FILE = "store.sqlite"
MIGRATIONS = "segmenta.store:migrations"
_upgraded: set[str] = set()
_lock = threading.Lock()


def resolve_url(workspace: Path, config: dict[str, Any] | None = None, explicit: str | None = None) -> str:
    """The store URL for ``workspace``: ``explicit``, else the settings' ``store`` (``config``), else the SQLite file.

    ``config`` is :attr:`Settings.config <segmenta.settings.Settings.config>` (flag, environment and file applied).
    """
    url = explicit or (config or {}).get("store")
    if not url:
        return f"sqlite:///{(Path(workspace) / STORE_FILE).resolve()}"
    return normalise_url(str(url))


def normalise_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> ``postgresql+psycopg://``; other URLs unchanged (checked)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise RejectedInput(
            [Problem("--store", f"{url!r} is not a database URL such as postgresql://user@host/db or sqlite:///path")]
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise RejectedInput(
            [Problem("--store", f"{parsed.get_backend_name()!r} is not supported; use sqlite:/// or postgresql://")]
        )
    return url


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def create_store_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url``; SQLite waits for the write lock instead of failing at once."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_con: Any, _record: Any) -> None:
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA busy_timeout = 60000")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable against a crashed process
            cur.close()

        db_file = engine.url.database

        @event.listens_for(engine, "connect")
        def _private(_dbapi_con: Any, _record: Any) -> None:
            # Password hashes and tokens live here: the owner's only (0600), the WAL files too.
            if db_file and db_file != ":memory:":
                from segmenta.fileio import make_private

                for suffix in ("", "-wal", "-shm"):
                    make_private(db_file + suffix)

        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the store's schema to ``revision`` with the migrations shipped in the package."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as con:
        if is_postgres(engine):  # two processes opening a fresh store must not both create it
            con.execute(text("SELECT pg_advisory_xact_lock(742031)"))
        cfg.attributes["connection"] = con
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The store's schema revision (None for an empty store)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as con:
        return MigrationContext.configure(con).get_current_revision()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


class Store:
    """An open metadata store: ``with store.session() as s: ...`` commits on success."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        try:
            self._ensure_schema()
        except Exception:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _ensure_schema(self) -> None:
        with _lock:
            if self.url in _upgraded:
                return
        if current_revision(self.engine) != head_revision():
            upgrade(self.engine)
        with _lock:
            _upgraded.add(self.url)

    @property
    def postgres(self) -> bool:
        return is_postgres(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
