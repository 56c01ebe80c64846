"""Fixtures of the sales-sequence tests: a small CRM (contacts with an active rule, sellers), a
work-assignment segment with a rule that assigns seller 7, driven through the CLI in-process, and
the journeys' real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segmenta.interfaces.cli import app
from tests.journeys.conftest import Sink, smtp  # noqa: F401 - the real SMTP server fixture

MODEL: dict[str, Any] = {
    "tables": {
        "contact": {
            "key": "contactid",
            "active": {"attribute": "statecode", "equals": 0},
            "columns": {
                "contactid": {"type": "integer"},
                "firstname": {"type": "text"},
                "email": {"type": "text"},
                "country": {"type": "text"},
                "stage": {"type": "text"},
                "statecode": {"type": "integer"},
            },
        },
        "seller": {"key": "sellerid", "columns": {"sellerid": {"type": "integer"}, "name": {"type": "text"}}},
    },
}
HEADER = ["contactid", "firstname", "email", "country", "stage", "statecode"]
CONTACTS = [
    (1, "Ann", "ann@example.com", "UK", "new", 0),
    (2, "Bob", "bob@example.com", "UK", "new", 0),
    (3, "Cleo", "", "UK", "new", 0),  # no address: an automated email is skipped
    (4, "Dara", "dara@example.com", "FR", "new", 0),  # not in the UK segment
]
SELLERS = [(7, "Sam"), (8, "Kim")]
T0 = "2026-10-01T09:00:00"
UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
RULE = {"name": "sam", "pool": {"table": "seller", "sellers": [7]}}


def write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@dataclass
class Crm:
    ws: Path
    tmp: Path
    smtp_url: str = ""
    store: str | None = None
    runner: CliRunner = field(default_factory=CliRunner)

    def run(self, *args: str, code: int = 0, now: str = T0, env: dict[str, str] | None = None) -> Any:
        result = self.runner.invoke(
            app,
            ["--workspace", str(self.ws), *(["--store", self.store] if self.store else []), *args],
            env={"SEGMENTA_NOW": now, "SEGMENTA_SMTP_URL": self.smtp_url, **(env or {})},
        )
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

    def upsert(self, rows: list[dict[str, Any]], now: str = T0) -> None:
        self.run("records", "upsert", "contact", self.file("change", rows), now=now)

    def activities(self, seller: str = "7", now: str = T0) -> list[dict[str, Any]]:
        return list(self.json("sequence", "activities", "--seller", seller, now=now))

    def report(self, name: str, now: str = T0) -> dict[str, Any]:
        return dict(self.json("sequence", "show", name, now=now)["report"])


@pytest.fixture(scope="session")
def crm_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import segmenta

    root = tmp_path_factory.mktemp("sequence-template")
    model = root / "model.json"
    model.write_text(json.dumps(MODEL))
    ws = segmenta.Workspace.init(root / "ws", model=model)
    ws.load("contact", write_csv(root / "c.csv", HEADER, CONTACTS))
    ws.load("seller", write_csv(root / "s.csv", ["sellerid", "name"], SELLERS))
    ws.close()
    return root / "ws"


@pytest.fixture(params=["sqlite"])
def seq_store(request: pytest.FixtureRequest) -> str:
    """The store: the workspace's SQLite file, or (where a test asks, indirectly) a fresh PostgreSQL schema."""
    return str(request.param)


@pytest.fixture()
def crm(
    crm_template: Path,
    tmp_path: Path,
    smtp: tuple[str, Sink],  # noqa: F811 - the fixture imported above
    seq_store: str,
    request: pytest.FixtureRequest,
) -> Iterator[Crm]:
    """A private copy of the CRM with the work-assignment segment ``UK leads`` (active, rule ``sam`` active)."""
    ws = tmp_path / "ws"
    shutil.copytree(crm_template, ws)
    store = str(request.getfixturevalue("pg_schema_url")) if seq_store == "postgres" else None
    c = Crm(ws=ws, tmp=tmp_path, smtp_url=smtp[0], store=store)
    c.run("assignment", "create", c.file("uk", UK), "--name", "UK leads")
    c.run("assignment", "rules", "add", "UK leads", c.file("rule", RULE))
    c.run("assignment", "rules", "activate", "UK leads", "sam")
    c.run("assignment", "activate", "UK leads")
    yield c


@pytest.fixture()
def sink(smtp: tuple[str, Sink]) -> Sink:  # noqa: F811
    return smtp[1]
