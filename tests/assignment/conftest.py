"""Fixtures of the work-assignment tests: a small CRM (contacts with an active rule, their accounts and
interactions) driven through the CLI in-process, with the store on SQLite or on the real PostgreSQL
server (a fresh schema per test; skipped on a laptop without it, failing in CI)."""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segmenta.interfaces.cli import app
from tests.api.conftest import api, template  # noqa: F401 - the REST tests' fixtures (test_api.py)
from tests.conftest import need

MODEL: dict[str, Any] = {
    "tables": {
        "account": {
            "key": "accountid",
            "columns": {"accountid": {"type": "integer"}, "industry": {"type": "text"}},
        },
        "contact": {
            "key": "contactid",
            "active": {"attribute": "statecode", "equals": 0},
            "columns": {
                "contactid": {"type": "integer"},
                "country": {"type": "text"},
                "score": {"type": "integer"},
                "parentaccountid": {"type": "integer"},
                "statecode": {"type": "integer"},
            },
        },
        "interaction": {
            "key": "interactionid",
            "columns": {"interactionid": {"type": "integer"}, "contactid": {"type": "integer"}, "type": {"type": "text"}},
        },
    },
    "relationships": [
        {"name": "account", "from": "contact.parentaccountid", "to": "account.accountid", "reverse": "contacts"},
        {"name": "contact", "from": "interaction.contactid", "to": "contact.contactid", "reverse": "interactions"},
    ],
}
ACCOUNTS = [(10, "Tech"), (20, "Retail")]
#: contactid, country, score, parentaccountid, statecode
CONTACTS = [
    (1, "UK", 50, 10, 0),
    (2, "FR", 10, 20, 0),
    (3, "UK", 90, 20, 0),
    (4, "DE", 70, 10, 1),  # inactive
    (5, "DE", 20, None, 0),
    (6, "FR", 80, 10, 0),
]
INTERACTIONS = [(1, 1, "click"), (2, 2, "open"), (3, 6, "click")]
T0 = "2026-10-01T12:00:00"

UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
CLICKERS = {
    "audience": "contact",
    "groups": [{"where": {"related": "interactions", "where": {"attribute": "type", "op": "eq", "value": "click"}}}],
}
TECH = {"audience": "contact", "groups": [{"where": {"path": ["account"], "attribute": "industry", "op": "eq", "value": "Tech"}}]}
HIGH = {"audience": "contact", "groups": [{"where": {"attribute": "score", "op": "gte", "value": 60}}]}
PG_BASE = os.environ.get("SEGMENTA_TEST_PG", "host=127.0.0.1 port=5432 dbname=test")


def write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@dataclass
class Crm:
    """A workspace and a store, driven through the CLI in-process."""

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

    def file(self, name: str, data: Any) -> str:
        p = self.tmp / f"{name}.json"
        p.write_text(json.dumps(data), encoding="utf-8")
        return str(p)

    def create(self, name: str, data: dict[str, Any], *extra: str, code: int = 0) -> Any:
        return self.run("assignment", "create", self.file(f"def-{uuid.uuid4().hex[:8]}", data), "--name", name, *extra, code=code)

    def upsert(self, table: str, rows: list[dict[str, Any]], *, delete: bool = False) -> None:
        p = self.tmp / f"change-{uuid.uuid4().hex[:8]}.ndjson"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        self.run("records", "delete" if delete else "upsert", table, str(p))

    def segment_of(self, key: int) -> str | None:
        info: str | None = self.json("assignment", "show", "contact", str(key))["segment"]
        return info

    def segments(self, keys: list[int] | None = None) -> dict[int, str | None]:
        return {k: self.segment_of(k) for k in (keys or [c[0] for c in CONTACTS])}

    def listing(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.json("assignment", "list", "contact")
        return rows


def build(path: Path, scratch: Path) -> Path:
    import segmenta

    model = scratch / "model.json"
    model.write_text(json.dumps(MODEL))
    ws = segmenta.Workspace.init(path, model=model)
    ws.load("account", write_csv(scratch / "a.csv", ["accountid", "industry"], ACCOUNTS))
    ws.load("contact", write_csv(scratch / "c.csv", ["contactid", "country", "score", "parentaccountid", "statecode"], CONTACTS))
    ws.load("interaction", write_csv(scratch / "i.csv", ["interactionid", "contactid", "type"], INTERACTIONS))
    ws.close()
    return path


@pytest.fixture(scope="session")
def crm_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("assignment-template")
    return build(root / "ws", root)


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
def pg_store() -> Iterator[str]:
    """A fresh schema in database ``test``, as a store URL whose search_path is that schema."""
    try:
        con, user = _pg_connect()
    except Exception as exc:  # noqa: BLE001
        need(False, f"PostgreSQL on 127.0.0.1:5432 ({exc})")
        raise
    schema = f"wa_{uuid.uuid4().hex[:12]}"
    con.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql://{user}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        con.close()


@pytest.fixture(params=["sqlite", "postgres"])
def crm(request: pytest.FixtureRequest, crm_template: Path, tmp_path: Path) -> Crm:
    """The small CRM (a copy of the template) with a fresh store on SQLite or PostgreSQL."""
    import shutil

    store = request.getfixturevalue("pg_store") if request.param == "postgres" else None
    ws = tmp_path / "ws"
    shutil.copytree(crm_template, ws)
    return Crm(ws=ws, store=store, tmp=tmp_path, runner=CliRunner())


@pytest.fixture()
def crm_sqlite(crm_template: Path, tmp_path: Path) -> Crm:
    """The small CRM with its SQLite store only (tests of behaviour that does not depend on the store)."""
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(crm_template, ws)
    return Crm(ws=ws, store=None, tmp=tmp_path, runner=CliRunner())
