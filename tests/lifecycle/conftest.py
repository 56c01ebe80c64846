"""Fixtures of the segment lifecycle tests: one small workspace on every engine (the engine fixture:
DuckDB, PostgreSQL, Spark on each module's ``SPARK_CASES``) with every store (the store fixture:
the workspace's SQLite file, or a fresh schema on the PostgreSQL server at 127.0.0.1:5432).
Tests needing the server or Spark skip on a laptop without them and fail in CI."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import segmenta
from segmenta.interfaces.cli import app
from segmenta.model.schema import Model
from tests.engines.fixtures import pg_schema_url, store_kind  # noqa: F401 - re-exported: tests import them from here
from tests.engines.helpers import drop, workspace_on

MODEL = {
    "tables": {
        "contact": {
            "key": "contactid",
            "active": {"attribute": "statecode", "equals": 0},
            "columns": {
                "contactid": {"type": "integer"},
                "email": {"type": "text"},
                "country": {"type": "text"},
                "statecode": {"type": "integer"},
            },
        },
        "interaction": {
            "key": "interactionid",
            "columns": {"interactionid": {"type": "integer"}, "contactid": {"type": "integer"}, "type": {"type": "text"}},
        },
        "account": {"key": "accountid", "columns": {"accountid": {"type": "integer"}, "name": {"type": "text"}}},
    },
    "relationships": [{"name": "contact", "from": "interaction.contactid", "to": "contact.contactid", "reverse": "interactions"}],
}
CONTACTS = [
    (1, "ann@example.com", "UK", 0),
    (2, "BOB@example.com", "FR", 0),
    (3, "cleo@example.com", "UK", 0),
    (4, "dara@example.com", "DE", 1),  # inactive
    (5, "shared@example.com", "UK", 0),
    (6, "Shared@Example.com", "FR", 0),
]
INTERACTIONS = [(1, 1, "email_click"), (2, 2, "email_open"), (3, 3, "email_click")]
T0 = "2026-10-01T12:00:00"


def write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@dataclass
class Lifecycle:
    """A workspace plus a store, driven through the CLI in-process (``run``)."""

    ws: Path
    store: str | None
    tmp: Path
    runner: CliRunner
    #: The data engine the workspace is on (the engine fixture's name).
    engine: str = "duckdb"

    def run(self, *args: str, code: int = 0, now: str = T0) -> Any:
        base = ["--workspace", str(self.ws)] + (["--store", self.store] if self.store else [])
        result = self.runner.invoke(app, [*base, *args], env={"SEGMENTA_NOW": now})
        assert result.exit_code == code, (
            f"{args}: exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"
        )
        return result

    def json(self, *args: str, now: str = T0) -> Any:
        return json.loads(self.run(*args, "--json", now=now).stdout)

    def definition(self, name: str, data: dict[str, Any]) -> str:
        p = self.tmp / f"{name}.json"
        p.write_text(json.dumps(data), encoding="utf-8")
        return str(p)

    def load_contacts(self, rows: list[tuple[Any, ...]], now: str = T0) -> None:
        f = write_csv(self.tmp / "contact.csv", ["contactid", "email", "country", "statecode"], rows)
        self.run("load", "contact", str(f), now=now)

    def members(self, name: str, now: str = T0) -> list[int]:
        out = self.tmp / f"{name.replace('/', '_')}-members.csv"
        self.run("segment", "members", name, "--out", str(out), now=now)
        with out.open(newline="") as fh:
            return [int(r[0]) for r in list(csv.reader(fh))[1:]]

    def cli_env(self) -> dict[str, str]:
        """Environment for a subprocess ``segmenta`` (store by env)."""
        env = {**os.environ, "SEGMENTA_WORKSPACE": str(self.ws)}
        if self.store:
            env["SEGMENTA_STORE_URL"] = self.store
        return env


def engine_workspace(
    request: pytest.FixtureRequest,
    engine: str,
    dest: Path,
    name: str,
    model: Any,
    build: Callable[[segmenta.Workspace, Path], None],
) -> Path:
    """A workspace at ``dest`` on ``engine`` with ``model``, filled by ``build(ws, scratch)``.

    DuckDB and Spark keep their data in the workspace's files, so ``build`` runs once per run and
    engine (template ``name``) and each test gets a copy. PostgreSQL keeps it in schemas named in
    ``segmenta.yaml``: a copy would share them, so each test builds its own, dropped afterwards.
    """
    if engine == "postgres":
        scratch = dest.parent / f"{dest.name}-build"
        scratch.mkdir()
        ws = workspace_on(engine, request, dest, model=model)
        request.addfinalizer(lambda: drop(segmenta.Workspace.open(dest)))
        try:
            build(ws, scratch)
        finally:
            ws.close()
        return dest
    key = (name, engine)
    if key not in _TEMPLATES:
        root = request.getfixturevalue("tmp_path_factory").mktemp(f"{name}-{engine}")
        ws = workspace_on(engine, request, root / "ws", model=model)
        try:
            build(ws, root)
        finally:
            ws.close()
        _TEMPLATES[key] = root / "ws"
    shutil.copytree(_TEMPLATES[key], dest)
    return dest


#: (template, engine) -> the template workspace built this run (DuckDB and Spark; see engine_workspace).
_TEMPLATES: dict[tuple[str, str], Path] = {}


def build_small(ws: segmenta.Workspace, scratch: Path) -> None:
    """The small CRM above: CONTACTS and INTERACTIONS."""
    ws.load("contact", write_csv(scratch / "c.csv", ["contactid", "email", "country", "statecode"], CONTACTS))
    ws.load("interaction", write_csv(scratch / "i.csv", ["interactionid", "contactid", "type"], INTERACTIONS))


@pytest.fixture(scope="session")
def template_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small CRM on DuckDB (for tests outside this directory that copy it themselves)."""
    root = tmp_path_factory.mktemp("lifecycle-template")
    model = root / "model.json"
    model.write_text(json.dumps(MODEL))
    ws = segmenta.Workspace.init(root / "ws", model=model)
    build_small(ws, root)
    ws.close()
    return root / "ws"


@pytest.fixture()
def life(engine_name: str, store_url: str | None, tmp_path: Path, request: pytest.FixtureRequest) -> Lifecycle:
    """The small CRM on the engine under test (engine fixture) with a fresh store (store fixture)."""
    ws = engine_workspace(request, engine_name, tmp_path / "ws", "lifecycle", Model.from_data(MODEL), build_small)
    return Lifecycle(ws=ws, store=store_url, tmp=tmp_path, runner=CliRunner(), engine=engine_name)
