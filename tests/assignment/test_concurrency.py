"""Two `segmenta records upsert` processes at once on PostgreSQL (data and store on the real server):
no lead is assigned twice or lost, and no seller goes over capacity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import segmenta
from segmenta.services.assignment import Assignments
from segmenta.services.assignment_rules import Rules
from segmenta.services.segments import Segments
from segmenta.store.assignment_models import AssignmentDecision
from tests.assignment.conftest import Crm, _pg_connect, write_csv
from tests.assignment.test_rules import ALL, SELLER_COLUMNS, model
from tests.conftest import need, sigkill_when


@pytest.fixture()
def pg_desk(tmp_path: Path, pg_store: str) -> Iterator[Path]:
    try:
        con, user = _pg_connect()
        con.close()
    except Exception as exc:  # noqa: BLE001
        need(False, f"PostgreSQL on 127.0.0.1:5432 ({exc})")
        raise
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model()))
    url = f"postgresql://{user}@127.0.0.1:5432/test"
    ws = segmenta.Workspace.init(tmp_path / "ws", model=path, engine="postgres", settings={"postgres": {"url": url}})
    sellers = [(i, "UK", 10, "north", None, None, None, None) for i in (1, 2, 3)]
    try:
        ws.load("seller", write_csv(tmp_path / "s.csv", SELLER_COLUMNS, sellers))
        yield tmp_path / "ws"
    finally:
        ws.engine.drop_schemas()  # type: ignore[attr-defined]
        ws.close()


def test_two_processes_at_once_assign_each_lead_once_within_capacity(pg_desk: Path, pg_store: str, tmp_path: Path) -> None:
    lb = {"name": "lb", "pool": {"table": "seller", "teams": ["north"]}, "distribution": "load_balancing"}
    with Segments.open(pg_desk, store_url=pg_store) as segs:
        wa = Assignments(segs)
        wa.create(ALL, name="all")
        Rules(wa).add("all", lb)
        Rules(wa).set_active("all", "lb", True)
        wa.activate("all")
    env = {**os.environ, "SEGMENTA_WORKSPACE": str(pg_desk), "SEGMENTA_STORE_URL": pg_store}
    procs = []
    for part in (0, 1):
        f = tmp_path / f"leads{part}.ndjson"
        f.write_text("".join(json.dumps({"leadid": part * 100 + i, "country": "UK", "statecode": 0}) + "\n" for i in range(20)))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "segmenta", "records", "upsert", "lead", str(f)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, (out, err)
    with Segments.open(pg_desk, store_url=pg_store) as segs, segs.store.session() as s:
        rows = s.execute(
            select(AssignmentDecision.key, AssignmentDecision.seller, AssignmentDecision.status).where(AssignmentDecision.current)
        ).all()
    keys = Counter(k for k, _, _ in rows)
    assert len(keys) == 40 and max(keys.values()) == 1  # none lost, none twice
    per_seller = Counter(seller for _, seller, status in rows if status == "assigned")
    assert per_seller == Counter({"1": 10, "2": 10, "3": 10})  # capacity 10 each, never exceeded
    assert sum(1 for _, _, status in rows if status == "queued") == 10


def test_a_process_killed_mid_routing_leaves_no_lead_assigned_twice_or_lost(tmp_path: Path) -> None:
    """SIGKILL inside the routing transaction: nothing of it stays; the next command routes and assigns every lead once."""
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model()))
    ws = segmenta.Workspace.init(tmp_path / "ws", model=path)
    ws.load(
        "seller", write_csv(tmp_path / "s.csv", SELLER_COLUMNS, [(i, "UK", 100, "north", None, None, None, None) for i in (1, 2)])
    )
    ws.close()
    rr = {"name": "rr", "pool": {"table": "seller", "teams": ["north"]}}
    with Segments.open(tmp_path / "ws") as segs:
        wa = Assignments(segs)
        wa.create(ALL, name="all")
        Rules(wa).add("all", rr)
        Rules(wa).set_active("all", "rr", True)
        wa.activate("all")
    f = tmp_path / "leads.ndjson"
    f.write_text("".join(json.dumps({"leadid": i, "country": "UK", "statecode": 0}) + "\n" for i in range(1, 21)))
    marker = tmp_path / "hang"
    env = {**os.environ, "SEGMENTA_WORKSPACE": str(tmp_path / "ws"), "SEGMENTA_TEST_HANG_IN_ROUTING": str(marker)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmenta", "records", "upsert", "lead", str(f)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sigkill_when(marker, proc, timeout=120, what="the routing transaction")
    with Segments.open(tmp_path / "ws") as segs, segs.store.session() as s:
        assert s.execute(select(AssignmentDecision.id)).all() == []  # the killed transaction left nothing
    crm = Crm(ws=tmp_path / "ws", store=None, tmp=tmp_path, runner=CliRunner())
    assert {r["name"]: r["size"] for r in crm.json("assignment", "list", "lead")} == {"all": 20, "default": 0}
    with Segments.open(tmp_path / "ws") as segs, segs.store.session() as s:
        rows = s.execute(select(AssignmentDecision.key, AssignmentDecision.seller).where(AssignmentDecision.current)).all()
    assert sorted(int(k) for k, _ in rows) == list(range(1, 21))  # each lead once
    assert Counter(seller for _, seller in rows) == Counter({"1": 10, "2": 10})
