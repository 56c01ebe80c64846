"""Reconciling on open: a run whose owner lives is left alone; one whose owner died before the
membership commit is finished as interrupted, and a publish it cut short is not left going_live."""

from __future__ import annotations

import subprocess
import sys

from segmenta.membership.owners import RunOwner
from segmenta.services.segments import Segments
from tests.conftest import sigkill_when
from tests.lifecycle.conftest import Lifecycle
from tests.lifecycle.test_segments import UK

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
SPARK_CASES = ("test_a_running_run_whose_owner_holds_its_lock_is_left_alone",)
#: ... and of those, these also with the store on PostgreSQL.
SPARK_ON_PG_STORE: tuple[str, ...] = ()


def test_a_running_run_whose_owner_holds_its_lock_is_left_alone(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    with Segments.open(life.ws, store_url=life.store) as segs:
        seg = segs._snapshot_of("UK contacts")
        with RunOwner(life.ws) as owner:  # as a refresh in another thread of a service would
            run_id = segs._start_run(seg, 1, "refresh", seg.created_at, owner=owner)
            assert segs.reconcile() == []
            assert life.json("segment", "history", "UK contacts")[-1]["status"] == "running"
        assert segs.reconcile() == [run_id]  # the owner let go without finishing: interrupted
    last = life.json("segment", "history", "UK contacts")[-1]
    assert (last["refresh"], last["status"]) == (run_id, "error") and last["message"].startswith("interrupted")
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["size"]) == ("live", 3)


def test_a_publish_killed_before_its_commit_ends_in_error_not_going_live(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    marker = life.tmp / "in-transaction"
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmenta", "segment", "publish", "UK contacts"],
        env={
            **life.cli_env(),
            "SEGMENTA_PLUGINS": "tests.killpoints",
            "SEGMENTA_TEST_HANG_IN_REFRESH": str(marker),
            "SEGMENTA_NOW": "2026-10-02T00:00:00",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sigkill_when(marker, proc, timeout=120, what="its transaction")
    info = life.json("segment", "show", "UK contacts")
    assert info["status"] == "error" and info["status_reason"].startswith("interrupted")
    assert info["size"] == len(life.members("UK contacts")) == 0
    assert [r["status"] for r in life.json("segment", "history", "UK contacts")] == ["error"]
    life.run("segment", "publish", "UK contacts")  # and it can be published again
    assert life.members("UK contacts") == [1, 3, 5]
