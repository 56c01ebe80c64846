"""The service's long-lived state: one workspace, one store, and how requests share them.

Each request works on the engine's own per-request session (``Engine.session``): DuckDB,
embedded and single-process, gives each request its own cursor of the one connection, so
reads (estimates on every edit in the builder) run side by side; PostgreSQL's pool does the
same; an engine that cannot interleave requests (Spark) serves one at a time. Writes
(publish, refresh, import, ...) are serialised by one lock, which keeps DuckDB's optimistic
transactions from conflicting with each other.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from segmenta.errors import NotFound, PermissionDenied, Problem
from segmenta.interfaces.api.pii import visible_model
from segmenta.model.schema import Model
from segmenta.model.validate import DefinitionLimits
from segmenta.services.lifecycle_base import open_workspace
from segmenta.services.segments import Segments
from segmenta.services.stores import open_store
from segmenta.services.users import UserInfo, Users
from segmenta.workspace import Workspace


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
            self.store = open_store(self.ws.path, self.ws.config, store_url)
        except BaseException:
            self.ws.close()
            raise
        self.store_url = store_url
        self.users = Users(self.store)
        self.write_lock = threading.Lock()
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
        """A workspace view on the service's data with the engine's session for this request (closed after it)."""
        with self.ws.engine.session() as engine:
            yield Workspace(self.ws.path, self.ws.model, engine, self.ws.config)

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
