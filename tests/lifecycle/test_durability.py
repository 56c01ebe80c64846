"""Schema upgrades, a refresh killed part way, and concurrent workers (real processes)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from sqlalchemy import text

from segmenta.store.database import (
    Store,
    create_store_engine,
    current_revision,
    head_revision,
    normalise_url,
    resolve_url,
    upgrade,
)
from tests.conftest import sigkill_when
from tests.lifecycle.conftest import CONTACTS, Lifecycle
from tests.lifecycle.test_segments import UK

#: Spark's killed refresh and its commit files are tests/spark/test_spark_lifecycle.py's; these are the store's.
SPARK_CASES: tuple[str, ...] = ()


def _url(life: Lifecycle) -> str:
    return resolve_url(life.ws, explicit=life.store)


def test_a_store_written_at_the_first_revision_opens_in_the_newest(life: Lifecycle) -> None:
    engine = create_store_engine(normalise_url(_url(life)))
    try:
        upgrade(engine, "0001")
        assert current_revision(engine) == "0001"
        now = dt.datetime(2026, 9, 1)
        with engine.begin() as con:
            con.execute(
                text(
                    "INSERT INTO segments (id, name, audience, kind, status, status_reason, current_version, created_at, updated_at) "
                    "VALUES (1, 'Old', 'contact', 'dynamic', 'draft', 'draft', 1, :t, :t)"
                ),
                {"t": now},
            )
            con.execute(
                text("INSERT INTO segment_versions (segment_id, version, definition, created_at) VALUES (1, 1, :d, :t)"),
                {
                    "d": '{"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}',
                    "t": now,
                },
            )
    finally:
        engine.dispose()
    import segmenta.store.database as database

    database._upgraded.discard(normalise_url(_url(life)))
    info = life.json("segment", "show", "Old")
    assert (info["status"], info["version"], info["settings"]) == ("draft", 1, {})
    with Store(normalise_url(_url(life))) as store:
        assert current_revision(store.engine) == head_revision()
    life.run("segment", "publish", "Old")
    assert life.members("Old") == [1, 3, 5]


def _spawn(life: Lifecycle, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "segmenta", *args],
        env={**life.cli_env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_refresh_killed_part_way_leaves_the_previous_membership(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.load_contacts([(1, "ann@example.com", "FR", 0), *CONTACTS[1:], (7, "new@example.com", "UK", 0)])
    marker = life.tmp / "in-transaction"
    proc = _spawn(
        life,
        "segment",
        "refresh",
        "UK contacts",
        env={
            "SEGMENTA_PLUGINS": "tests.killpoints",
            "SEGMENTA_TEST_HANG_IN_REFRESH": str(marker),
            "SEGMENTA_NOW": "2026-10-02T00:00:00",
        },
    )
    sigkill_when(marker, proc, timeout=120, what="its transaction")
    assert life.members("UK contacts") == [1, 3, 5]
    assert life.json("segment", "history", "UK contacts", "--record", "7") == []
    # the killed run does not stay running: its owner is gone and nothing was committed
    runs = life.json("segment", "history", "UK contacts")
    assert [(r["status"], (r["message"] or "").split(":")[0]) for r in runs] == [("done", ""), ("error", "interrupted")]
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["size"]) == ("live", 3)
    life.run("segment", "refresh", "UK contacts", now="2026-10-02T00:00:00")
    assert life.members("UK contacts") == [3, 5, 7]
    runs = [r for r in life.json("segment", "history", "UK contacts") if r["status"] == "done"]
    assert [(r["entered"], r["exited"]) for r in runs] == [(3, 0), (1, 1)]


@pytest.mark.parametrize("store_kind", ["postgres"], indirect=False)
def test_two_workers_never_do_the_same_refresh(life: Lifecycle, store_kind: str) -> None:
    names = [f"S{i}" for i in range(6)]
    for n in names:
        life.run("segment", "create", life.definition("uk", UK), "--name", n)
        life.run("segment", "publish", n)
    env = {"SEGMENTA_NOW": "2026-10-02T13:00:00"}
    workers = [_spawn(life, "worker", "--once", env=env) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    for n in names:
        runs = [r for r in life.json("segment", "history", n) if r["trigger"] == "worker"]
        assert len(runs) == 1, (n, runs)
    done = [line for out, _ in outputs for line in out.splitlines() if line.startswith("refreshed")]
    assert len(done) == len(names)
