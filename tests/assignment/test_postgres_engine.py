"""Work assignment on the PostgreSQL engine (data and store on the real server): the same answers as on DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import segmenta
from tests.assignment.conftest import (
    ACCOUNTS,
    CLICKERS,
    CONTACTS,
    INTERACTIONS,
    MODEL,
    TECH,
    UK,
    Crm,
    _pg_connect,
    write_csv,
)
from tests.conftest import need


@pytest.fixture()
def pg_crm(tmp_path: Path, pg_store: str) -> Iterator[Crm]:
    try:
        con, user = _pg_connect()
        con.close()
    except Exception as exc:  # noqa: BLE001
        need(False, f"PostgreSQL on 127.0.0.1:5432 ({exc})")
        raise
    model = tmp_path / "model.json"
    model.write_text(json.dumps(MODEL))
    url = f"postgresql://{user}@127.0.0.1:5432/test"
    ws = segmenta.Workspace.init(tmp_path / "ws", model=model, engine="postgres", settings={"postgres": {"url": url}})
    try:
        ws.load("account", write_csv(tmp_path / "a.csv", ["accountid", "industry"], ACCOUNTS))
        ws.load(
            "contact", write_csv(tmp_path / "c.csv", ["contactid", "country", "score", "parentaccountid", "statecode"], CONTACTS)
        )
        ws.load("interaction", write_csv(tmp_path / "i.csv", ["interactionid", "contactid", "type"], INTERACTIONS))
        yield Crm(ws=tmp_path / "ws", store=pg_store, tmp=tmp_path, runner=CliRunner())
    finally:
        ws.engine.drop_schemas()  # type: ignore[attr-defined]
        ws.close()


def test_routing_related_changes_and_simulate_on_postgres(pg_crm: Crm) -> None:
    crm = pg_crm
    crm.create("uk", UK)
    crm.create("clickers", CLICKERS)
    crm.create("tech", TECH)
    assert json.loads(crm.run("assignment", "simulate", "clickers", "--json").stdout) == {"keys": [1, 6], "count": 2}
    crm.run("assignment", "activate", "clickers")
    crm.run("assignment", "activate", "uk")
    crm.run("assignment", "activate", "tech")
    assert crm.segments() == {1: "uk", 2: "default", 3: "uk", 4: None, 5: "default", 6: "clickers"}
    crm.upsert("interaction", [{"interactionid": 9, "contactid": 5, "type": "click"}])  # an insert: old versions empty
    crm.upsert("account", [{"accountid": 20, "industry": "Tech"}])
    crm.upsert("contact", [{"contactid": 3, "statecode": 1}, {"contactid": 7, "country": "UK", "statecode": 0}])
    assert crm.segments([2, 3, 5, 7]) == {2: "tech", 3: None, 5: "clickers", 7: "uk"}
