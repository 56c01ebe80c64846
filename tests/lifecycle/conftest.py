"""Fixtures of the segment lifecycle tests: one small workspace, and the store parametrised
over SQLite (the workspace's file) and PostgreSQL (the real server on 127.0.0.1:5432; each
test gets a fresh schema). PostgreSQL tests skip on a laptop without the server and fail in CI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segmenta.interfaces.cli import app
from tests.conftest import need

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
PG_BASE = os.environ.get("SEGMENTA_TEST_PG", "host=127.0.0.1 port=5432 dbname=test")


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


@pytest.fixture(scope="session")
def template_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import segmenta

    root = tmp_path_factory.mktemp("lifecycle-template")
    model = root / "model.json"
    model.write_text(json.dumps(MODEL))
    ws = segmenta.Workspace.init(root / "ws", model=model)
    ws.load("contact", write_csv(root / "c.csv", ["contactid", "email", "country", "statecode"], CONTACTS))
    ws.load("interaction", write_csv(root / "i.csv", ["interactionid", "contactid", "type"], INTERACTIONS))
    ws.close()
    return root / "ws"


def _pg_connect() -> Any:
    import psycopg

    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            return psycopg.connect(f"{PG_BASE} user={user}", autocommit=True, connect_timeout=3), user
        except Exception as exc:  # noqa: BLE001 - try the next user
            last = exc
    raise RuntimeError(f"no PostgreSQL at {PG_BASE}: {last}")


@pytest.fixture()
def pg_schema_url() -> Iterator[str]:
    """A fresh schema in database ``test``, as a store URL whose search_path is that schema."""
    try:
        con, user = _pg_connect()
    except Exception as exc:  # noqa: BLE001
        need(False, f"PostgreSQL on 127.0.0.1:5432 ({exc})")
        raise
    schema = f"seg_{uuid.uuid4().hex[:12]}"
    con.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql://{user}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        con.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def life(store_kind: str, template_ws: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Lifecycle:
    """A private copy of the small workspace with a fresh store (SQLite file or PostgreSQL schema)."""
    ws = tmp_path / "ws"
    shutil.copytree(template_ws, ws)
    store = request.getfixturevalue("pg_schema_url") if store_kind == "postgres" else None
    return Lifecycle(ws=ws, store=store, tmp=tmp_path, runner=CliRunner())
