"""The service's long-lived state: one workspace, one store, and how requests share them.

DuckDB is embedded and single-process: the service holds the database open once and gives
each request its own cursor (``connection.cursor()``), so reads (estimates on every edit in
the builder) run side by side. Writes (publish, refresh, import, ...) are serialised by one
lock, which keeps DuckDB's optimistic transactions from conflicting with each other. An
engine without cursors (Spark) is used by one request at a time.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segmenta.engines.base import Engine
from segmenta.engines.duckdb import DuckDBEngine
from segmenta.errors import NotFound, PermissionDenied, Problem
from segmenta.interfaces.api.pii import visible_model
from segmenta.model.schema import Model
from segmenta.model.validate import DefinitionLimits
from segmenta.services.lifecycle_base import open_workspace
from segmenta.services.segments import Segments
from segmenta.services.users import UserInfo, Users
from segmenta.store.database import Store, resolve_url
from segmenta.workspace import Workspace


class CursorEngine(DuckDBEngine):
    """A DuckDB engine on a cursor of the service's connection (same database, own transaction state)."""

    def __init__(self, parent: DuckDBEngine) -> None:  # noqa: D107 - no new connection is opened
        self.path = parent.path
        self.settings = parent.settings  # the memory limit its errors name
        # The workspace's limits.statement_timeout_s: a query over it is interrupted on THIS cursor
        # (other requests' cursors run on), and the cursor is closed when the request ends either way.
        self.statement_timeout_s = parent.statement_timeout_s
        self.con = parent.con.cursor()
        self.con.execute("SET TimeZone = 'UTC'")


@dataclass(frozen=True)
class ImportFile:
    """A not-found CSV of one import, downloadable by the user who ran it."""

    path: Path
    username: str


class Service:
    """What every request needs: the workspace, the store, users, locks and the visible models."""

    def __init__(self, workspace: str | Path, *, store_url: str | None = None) -> None:
        self.ws = open_workspace(workspace)
        try:
            self.store = Store(resolve_url(self.ws.path, self.ws.config, store_url))
        except BaseException:
            self.ws.close()
            raise
        self.store_url = store_url
        self.users = Users(self.store)
        self.write_lock = threading.Lock()
        self._shared_engine_lock = None if isinstance(self.ws.engine, DuckDBEngine) else threading.Lock()
        self.model: Model = self.ws.model
        self.restricted_model: Model = visible_model(self.ws.model)
        try:
            #: ``limits.*`` of segmenta.yaml: how big a definition any request may send (422 naming the limit).
            self.limits = DefinitionLimits.from_config(self.ws.config.get("limits"))
        except BaseException:
            self.store.close()
            self.ws.close()
            raise
        self._imports_dir = Path(tempfile.mkdtemp(prefix="segmenta-imports-"))
        self._imports: dict[str, ImportFile] = {}

    def model_for(self, user: UserInfo) -> Model:
        return self.restricted_model if user.pii_restricted else self.model

    @contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """A workspace view on the service's data with an engine of its own for this request."""
        engine: Engine
        if self._shared_engine_lock is None:
            assert isinstance(self.ws.engine, DuckDBEngine)
            engine = CursorEngine(self.ws.engine)
            guard: Any = nullcontext()
        else:  # the engine's own per-request session: serialised (Spark) or pooled (PostgreSQL)
            engine, guard = self.ws.engine, self.ws.engine.session()
        with guard:
            try:
                yield Workspace(self.ws.path, self.ws.model, engine, self.ws.config)
            finally:
                if engine is not self.ws.engine:
                    engine.close()

    @contextmanager
    def segments(self) -> Iterator[Segments]:
        """The lifecycle service on a per-request workspace (``in_segment`` resolves through it)."""
        with self.workspace() as ws:
            yield Segments(ws, self.store)

    # -- not-found files of CSV imports ----------------------------------------------------

    def new_import(self, username: str) -> tuple[str, Path]:
        import_id = secrets.token_urlsafe(12)
        path = self._imports_dir / f"{import_id}.csv"
        self._imports[import_id] = ImportFile(path, username)
        return import_id, path

    def import_file(self, import_id: str, user: UserInfo) -> Path:
        found = self._imports.get(import_id)
        if found is None or not found.path.is_file():
            raise NotFound([Problem(import_id, "no import has this id (not-found files last as long as the service runs)")])
        if found.username != user.username and user.role != "admin":
            raise PermissionDenied("only the user who ran the import (or an admin) can download its not-found rows")
        if user.pii_restricted:
            raise PermissionDenied("the not-found rows hold email addresses (PII), which your account may not see")
        return found.path

    def close(self) -> None:
        shutil.rmtree(self._imports_dir, ignore_errors=True)
        self.store.close()
        self.ws.close()
