"""Saved segments on Spark: the same members, counts and history as on DuckDB, and a killed refresh changes nothing.

Each test drives the real CLI in-process (the Spark session of the run is shared) against a
Spark workspace and, where the point is agreement, the same steps against a DuckDB one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import segmenta
from tests.conftest import sigkill_when
from tests.lifecycle.conftest import CONTACTS, INTERACTIONS, MODEL, Lifecycle, write_csv
from tests.lifecycle.test_segments import UK

pytestmark = pytest.mark.spark

AS_OF = "2026-10-27T12:00:00"
LATER = "2026-10-28T12:00:00"
CONFORMANCE_SEGMENTS = (
    "ne_skips_empty",
    "spend_last_year_over_1500",
    "choices_empty_set",
    "contains_ignores_case_and_escapes_wildcards",
)
ENGINES = ("duckdb", "spark")


def _state(ws: Path, segment_id: int = 1) -> dict[str, Any]:
    return json.loads((ws / "spark-tables" / ".segments" / str(segment_id) / "COMMIT").read_text())


@pytest.fixture(scope="module")
def templates(spark_session: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The lifecycle tests' small CRM, on each engine (copied per test)."""
    root = tmp_path_factory.mktemp("spark-lifecycle")
    model = root / "model.json"
    model.write_text(json.dumps(MODEL))
    out = {}
    for engine in ENGINES:
        ws = segmenta.Workspace.init(root / engine, model=model, engine=engine)
        ws.load("contact", write_csv(root / "c.csv", ["contactid", "email", "country", "statecode"], CONTACTS))
        ws.load("interaction", write_csv(root / "i.csv", ["interactionid", "contactid", "type"], INTERACTIONS))
        ws.close()
        out[engine] = root / engine
    return out


def _life(template: Path, tmp_path: Path, name: str) -> Lifecycle:
    shutil.copytree(template, tmp_path / name)
    tmp = tmp_path / f"{name}-files"
    tmp.mkdir()
    return Lifecycle(ws=tmp_path / name, store=None, tmp=tmp, runner=CliRunner())


@pytest.fixture()
def both(templates: dict[str, Path], tmp_path: Path) -> dict[str, Lifecycle]:
    return {engine: _life(templates[engine], tmp_path, engine) for engine in ENGINES}


def test_conformance_segments_publish_and_refresh_alike_on_both_engines(
    spark_session: Any, conformance_dir: Path, conformance_expected: dict, tmp_path: Path
) -> None:
    lives = {}
    for engine in ENGINES:
        ws = segmenta.Workspace.init(tmp_path / engine, model=conformance_dir / "model.yaml", engine=engine)
        for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
            ws.load(csv_file.stem, csv_file)
        ws.close()
        life = lives[engine] = Lifecycle(ws=tmp_path / engine, store=None, tmp=tmp_path, runner=CliRunner())
        for name in CONFORMANCE_SEGMENTS:
            life.run("segment", "create", str(conformance_dir / "segments" / f"{name}.json"), now=AS_OF)
            life.run("segment", "publish", name, now=AS_OF)
    for name in CONFORMANCE_SEGMENTS:
        assert (
            lives["spark"].members(name, now=AS_OF)
            == conformance_expected["members"][name]
            == lives["duckdb"].members(name, now=AS_OF)
        )

    # A data change: contact 8 goes, 3 moves to the UK, 4 gets an interest; then refresh on both.
    changed = tmp_path / "contact.csv"
    rows = (conformance_dir / "data" / "contact.csv").read_text().splitlines()
    rows = [
        r.replace(",DE,", ",UK,").replace("2000-01-01,2025-01-01T00:00:00,false,,", "2000-01-01,2025-01-01T00:00:00,false,golf,")
        for r in rows
        if not r.startswith("8,")
    ]
    changed.write_text("\n".join(rows) + "\n")
    for life in lives.values():
        life.run("load", "contact", str(changed), now=LATER)
        for name in CONFORMANCE_SEGMENTS:
            life.run("segment", "refresh", name, now=LATER)
    runs = {}
    for engine, life in lives.items():
        runs[engine] = {
            n: [(r["trigger"], r["size"], r["entered"], r["exited"]) for r in life.json("segment", "history", n, now=LATER)]
            for n in CONFORMANCE_SEGMENTS
        }
    assert runs["spark"] == runs["duckdb"]
    assert any(r[1][2] or r[1][3] for r in runs["spark"].values())  # the change moved someone
    for name in CONFORMANCE_SEGMENTS:
        assert lives["spark"].members(name, now=LATER) == lives["duckdb"].members(name, now=LATER)
        for key in ("3", "8"):
            got = {e: lives[e].json("segment", "history", name, "--record", key, now=LATER) for e in ENGINES}
            assert got["spark"] == got["duckdb"], (name, key)


def test_static_snapshot_keeps_its_members_on_refresh(both: dict[str, Lifecycle]) -> None:
    life = both["spark"]
    life.run("segment", "create", life.definition("uk", UK), "--snapshot")
    life.run("segment", "publish", "UK contacts")
    life.load_contacts([(1, "ann@example.com", "FR", 0), *CONTACTS[1:], (7, "new@example.com", "UK", 0)])
    out = life.run("segment", "refresh", "UK contacts", now=LATER)
    assert "nothing changed" in out.stdout + out.stderr
    assert life.members("UK contacts") == [1, 3, 5]
    life.run("segment", "publish", "UK contacts", now=LATER)  # publishing again re-evaluates
    assert life.members("UK contacts") == [3, 5, 7]
    assert life.json("segment", "show", "UK contacts")["size"] == 3


def test_lists_and_import_csv_count_the_same_on_both_engines(both: dict[str, Lifecycle]) -> None:
    rows = [
        ("Ann", " ANN@example.com "),
        ("Bob", "bob@EXAMPLE.com"),
        ("Nobody", "nobody@example.com"),
        ("Empty", ""),
        ("Ann again", "ann@example.com"),
        ("Dara", "dara@example.com"),  # inactive
        ("Shared", "shared@example.com"),  # two contacts
        ("Nobody2", "NOBODY@example.com"),
    ]
    got: dict[str, Any] = {}
    for engine, life in both.items():
        life.run("segment", "create", "--list", "--audience", "contact", "--name", "L")
        life.run("segment", "add", "L", "3", "1", "4")
        life.run("segment", "remove", "L", "4", "99", now=LATER)
        f = write_csv(life.tmp / "in.csv", ["Name", "EMAIL"], rows)
        nf = life.tmp / "nf.csv"
        counts = life.json("segment", "import-csv", "L", str(f), "--not-found", str(nf), now=LATER)
        again = life.json("segment", "import-csv", "L", str(f), now=LATER)  # importing adds: nothing new
        history = [(r["trigger"], r["size"], r["entered"], r["exited"]) for r in life.json("segment", "history", "L", now=LATER)]
        got[engine] = (counts, again, life.members("L"), nf.read_text(), history, life.json("segment", "show", "L")["size"])
    assert got["spark"] == got["duckdb"]
    assert got["spark"][0] == {
        **{"read": 8, "found": 4, "not_found": 4, "duplicates": 2, "members": 5},
        **{"multi_matched": 1, "max_matches": 2},  # shared@example.com: two active contacts
    }
    assert got["spark"][2] == [1, 2, 3, 5, 6]
    assert got["spark"][4] == [("add", 3, 3, 0), ("remove", 2, 0, 1), ("import", 5, 3, 0), ("import", 5, 0, 0)]
    assert not list((both["spark"].ws / "spark-tables" / ".staged").iterdir())  # the import's scratch files removed


def test_in_segment_reads_the_committed_membership_on_spark(both: dict[str, Lifecycle]) -> None:
    clicked_in_uk = {
        "audience": "contact",
        "groups": [
            {
                "where": {
                    "all": [
                        {"in_segment": "UK contacts"},
                        {"related": "interactions", "where": {"attribute": "type", "op": "eq", "value": "email_click"}},
                    ]
                }
            }
        ],
    }
    results = {}
    for engine, life in both.items():
        life.run("segment", "create", life.definition("uk", UK))
        life.run("segment", "publish", "UK contacts")
        d = life.definition("clicked_uk", clicked_in_uk)
        before = life.run("segment", "evaluate", d).stdout.strip().splitlines()[-1]
        life.load_contacts([(1, "ann@example.com", "FR", 0), *CONTACTS[1:]])
        stale = life.run("segment", "evaluate", d).stdout.strip().splitlines()[-1]  # stored membership, not re-evaluated
        life.run("segment", "refresh", "UK contacts", now=LATER)
        after = life.run("segment", "evaluate", d, now=LATER).stdout.strip().splitlines()[-1]
        life.run("segment", "create", d, "--name", "Clicked UK")
        life.run("segment", "publish", "Clicked UK", now=LATER)
        results[engine] = (before, stale, after, life.members("Clicked UK", now=LATER))
    assert results["spark"] == results["duckdb"] == ("2 members", "2 members", "1 members", [3])


def test_engine_option_and_worker_run_saved_segments_on_spark(both: dict[str, Lifecycle]) -> None:
    life = both["duckdb"]  # segmenta.yaml says duckdb; --engine spark moves everything below to Spark
    spark = ["--engine", "spark"]
    for table, header, rows in (
        ("contact", ["contactid", "email", "country", "statecode"], CONTACTS),
        ("interaction", ["interactionid", "contactid", "type"], INTERACTIONS),
    ):
        life.run(*spark, "load", table, str(write_csv(life.tmp / f"{table}.csv", header, rows)))
    life.run(*spark, "segment", "create", life.definition("uk", UK))
    life.run(*spark, "segment", "publish", "UK contacts")
    assert _state(life.ws)["size"] == 3
    life.run(
        *spark,
        "load",
        "contact",
        str(
            write_csv(
                life.tmp / "c2.csv",
                ["contactid", "email", "country", "statecode"],
                [(2, "b@example.com", "UK", 0), (3, "c@example.com", "UK", 0)],
            )
        ),
    )
    out = life.run(*spark, "worker", "--once", now="2026-10-02T12:00:00").stdout
    assert "refreshed UK contacts: 2 members (+1 -2)" in out
    assert life.run(*spark, "segment", "members", "UK contacts").stdout.strip().splitlines()[-1] == "2 members"
    history = life.json(*spark, "segment", "history", "UK contacts", "--record", "1")
    assert [h["change"] for h in history] == ["entered", "exited"]
    assert life.json("segment", "show", "UK contacts")["size"] == 2  # the store is shared; metadata agrees


def _spawn(life: Lifecycle, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "segmenta", *args],
        env={**life.cli_env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_refresh_killed_before_its_commit_leaves_the_previous_membership(both: dict[str, Lifecycle]) -> None:
    life = both["spark"]
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    committed = _state(life.ws)
    life.load_contacts([(1, "ann@example.com", "FR", 0), *CONTACTS[1:], (7, "new@example.com", "UK", 0)])
    marker = life.tmp / "written-not-committed"
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
    sigkill_when(marker, proc, timeout=240, what="its commit")
    seg_dir = life.ws / "spark-tables" / ".segments" / "1"
    written = {p.name for p in seg_dir.iterdir() if p.name[:2] in ("m-", "e-")}
    assert len(written) == 4  # the new members version and history part were written ...
    assert _state(life.ws) == committed  # ... but never committed
    assert life.members("UK contacts") == [1, 3, 5]
    assert life.json("segment", "history", "UK contacts", "--record", "7") == []
    assert life.json("segment", "show", "UK contacts")["size"] == 3

    life.run("segment", "refresh", "UK contacts", now="2026-10-02T00:00:00")
    assert life.members("UK contacts") == [3, 5, 7]
    runs = [r for r in life.json("segment", "history", "UK contacts") if r["status"] == "done"]
    assert [(r["entered"], r["exited"]) for r in runs] == [(3, 0), (1, 1)]
    state = _state(life.ws)
    kept = {p.name for p in seg_dir.iterdir() if p.name[:2] in ("m-", "e-")}
    # orphans of the killed refresh are gone; the new version, the one it replaced, and the history parts stay
    assert kept == {state["members"], committed["members"], *state["history"]}
