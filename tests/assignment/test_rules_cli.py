"""The rules, queue, seller and manual-assignment commands through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import segmenta
from tests.assignment.conftest import Crm, write_csv
from tests.assignment.test_rules import ALL, SELLER_COLUMNS, SELLERS, model


def test_rules_queue_seller_and_assign_commands(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model()))
    ws = segmenta.Workspace.init(tmp_path / "ws", model=path)
    ws.load("seller", write_csv(tmp_path / "s.csv", SELLER_COLUMNS, SELLERS))
    ws.close()
    crm = Crm(ws=tmp_path / "ws", store=None, tmp=tmp_path, runner=CliRunner())
    crm.create("all", ALL)
    rule = {
        "name": "fr",
        "where": {"attribute": "country", "op": "eq", "value": "FR"},
        "pool": {"table": "seller", "sellers": [3]},
    }
    crm.run("assignment", "rules", "add", "all", crm.file("rule", rule))
    crm.run("assignment", "rules", "add", "all", crm.file("rule2", {**rule, "name": "x", "distribution": "fastest"}), code=2)
    assert crm.json("assignment", "rules", "list", "all") == [{"name": "fr", "position": 1, "active": False, "spec": rule}]
    crm.run("assignment", "rules", "activate", "all", "fr")
    crm.run("assignment", "activate", "all")
    crm.upsert("lead", [{"leadid": 1, "country": "FR", "statecode": 0}, {"leadid": 2, "country": "UK", "statecode": 0}])
    assert crm.json("assignment", "show", "lead", "1")["assignment"]["seller"] == "3"
    assert [(q["key"], q["reason"]) for q in crm.json("assignment", "queue", "lead")] == [("2", "no_rule")]
    crm.run("assignment", "assign", "lead", "2", "1")
    assert crm.json("assignment", "queue", "lead") == []
    seller = crm.json("assignment", "seller", "seller", "1")
    assert seller["load"] == 1 and seller["records"] == [{"table": "lead", "key": "2", "manual": True, "overdue": False}]
    assert crm.json("assignment", "retry", "lead") == {"assigned": 0, "queued": 0}
    crm.run("assignment", "assign", "lead", "99", "1", code=2)  # no such record in a segment
