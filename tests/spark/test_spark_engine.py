"""What only the Spark engine has: versioned Parquet tables, catalog tables, session settings, the CLI option."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

import segmenta
from segmenta.errors import DataError, RejectedInput
from tests.engines.test_semantics import AS_OF, EDGE_CASES

pytestmark = pytest.mark.spark


def _load_conformance(ws: segmenta.Workspace, conformance_dir: Path) -> None:
    for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
        ws.load(csv_file.stem, csv_file)


def test_a_null_set_is_empty_even_with_legacy_size_of_null(spark_session: Any, conformance_dir: Path, tmp_path: Path) -> None:
    """A cluster with ANSI off has SIZE(NULL) = -1; the spark dialect's ARRAY_SIZE keeps null sets empty."""
    from tests.engines.test_semantics import EDGE_MODEL, PEOPLE

    ws = segmenta.Workspace.init(tmp_path / "ws", model=segmenta.Model.from_data(EDGE_MODEL), engine="spark")
    table = ws.model.table("person")
    rows = [{"id": r[0], "tags": r[2]} for r in PEOPLE]
    ws.engine.replace_table(
        "person", table, pa.Table.from_pylist(rows).cast(pa.schema([("id", pa.int64()), ("tags", pa.list_(pa.string()))]))
    )
    saved = {k: spark_session.conf.get(k) for k in ("spark.sql.ansi.enabled", "spark.sql.legacy.sizeOfNull")}
    spark_session.conf.set("spark.sql.ansi.enabled", "false")
    spark_session.conf.set("spark.sql.legacy.sizeOfNull", "true")
    try:
        assert spark_session.sql("SELECT SIZE(CAST(NULL AS ARRAY<STRING>)) AS n").collect()[0].n == -1  # the trap is armed
        for name in ("set_is_empty", "set_is_not_empty", "set_not_contains_any"):
            where, expected = EDGE_CASES[name]
            assert ws.evaluate({"audience": "person", "groups": [{"where": where}]}, as_of=AS_OF).keys == expected, name
    finally:
        for k, v in saved.items():
            spark_session.conf.set(k, v)


def test_load_swaps_versions_and_a_rejected_file_changes_nothing(
    spark_session: Any, conformance_dir: Path, tmp_path: Path
) -> None:
    ws = segmenta.Workspace.init(tmp_path / "ws", model=conformance_dir / "model.yaml", engine="spark")
    _load_conformance(ws, conformance_dir)
    table_dir = tmp_path / "ws" / "spark-tables" / "contact"
    first = (table_dir / "CURRENT").read_text()
    before = ws.evaluate(conformance_dir / "segments" / "ne_skips_empty.json", as_of=AS_OF).keys

    bad = tmp_path / "contact.csv"
    bad.write_text("contactid,score\n1,lots\n")
    with pytest.raises(DataError, match="score"):
        ws.load("contact", bad)
    assert (table_dir / "CURRENT").read_text() == first
    assert not list(table_dir.glob(".*tmp"))

    fewer = tmp_path / "fewer.csv"
    fewer.write_text("contactid,country,statecode\n3,DE,0\n")
    ws.load("contact", fewer)
    second = (table_dir / "CURRENT").read_text()
    assert second != first
    assert ws.evaluate(conformance_dir / "segments" / "ne_skips_empty.json", as_of=AS_OF).keys == [3] != before
    ws.load("contact", conformance_dir / "data" / "contact.csv")
    # The version just replaced stays for readers that read the old pointer; older ones go.
    assert sorted(p.name for p in table_dir.glob("v-*")) == sorted([second, (table_dir / "CURRENT").read_text()])
    assert ws.evaluate(conformance_dir / "segments" / "ne_skips_empty.json", as_of=AS_OF).keys == before


def test_catalog_table_per_model_table(
    spark_session: Any, conformance_dir: Path, conformance_expected: dict, tmp_path: Path
) -> None:
    """``spark.tables`` maps a model table to a catalog table: load writes it, evaluation reads it."""
    path = tmp_path / "ws"
    segmenta.Workspace.init(path, model=conformance_dir / "model.yaml", engine="spark").close()
    config = yaml.safe_load((path / "segmenta.yaml").read_text())
    config["spark"] = {"tables": {"order": "segmenta_test_orders"}}
    (path / "segmenta.yaml").write_text(yaml.safe_dump(config))
    shutil.rmtree(path / "spark-tables" / "order")  # init wrote it before the table was configured
    ws = segmenta.Workspace.open(path)
    _load_conformance(ws, conformance_dir)
    assert not (path / "spark-tables" / "order").exists()
    assert spark_session.catalog.tableExists("segmenta_test_orders")
    assert "order" in ws.engine.tables()
    for name in ("spend_last_year_over_1500", "never_ordered", "phone_spend_under_100_includes_none"):
        got = ws.evaluate(conformance_dir / "segments" / f"{name}.json", as_of=conformance_expected["as_of"]).keys
        assert got == conformance_expected["members"][name], name


def test_unknown_engine_and_spark_setting_are_rejected(tmp_path: Path, conformance_dir: Path) -> None:
    with pytest.raises(RejectedInput, match=r"unknown engine 'sprak' \(did you mean 'spark'\?\)"):
        segmenta.Workspace.init(tmp_path / "ws", model=conformance_dir / "model.yaml", engine="sprak")
    assert not (tmp_path / "ws").exists()
    from segmenta.engines.spark import SparkSettings
    from segmenta.errors import SegmentaError

    with pytest.raises(SegmentaError, match="unknown spark setting.*mastr"):
        SparkSettings.from_config({"mastr": "local[2]"})


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True)


def test_cli_engine_option(conformance_dir: Path, conformance_expected: dict, tmp_path: Path) -> None:
    """``--engine spark`` on init records it; load, sql and evaluate then run on Spark (one JVM: evaluate)."""
    ws = str(tmp_path / "ws")
    r = cli("--workspace", ws, "--engine", "spark", "init", "--model", str(conformance_dir / "model.yaml"))
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((tmp_path / "ws" / "segmenta.yaml").read_text())["engine"] == "spark"
    r = cli("--workspace", ws, "load", "contact", str(conformance_dir / "data" / "contact.csv"))  # all the case reads
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "ws" / "data.duckdb").exists()
    segment = str(conformance_dir / "segments" / "choices_empty_set.json")
    r = cli("--workspace", ws, "segment", "sql", segment, "--dialect", "spark", "--as-of", AS_OF)
    assert r.returncode == 0 and "ARRAY_SIZE(`t0`.`interests`)" in r.stdout, r.stderr
    out = tmp_path / "members.csv"
    r = cli("--workspace", ws, "segment", "evaluate", segment, "--as-of", AS_OF, "--out", str(out))
    assert r.returncode == 0, r.stderr
    want = conformance_expected["members"]["choices_empty_set"]
    assert r.stdout.strip().splitlines()[-1] == f"{len(want)} members"
    assert out.read_text().split() == ["contactid", *map(str, want)]
    r = cli("--workspace", ws, "--engine", "nope", "segment", "sql", segment)
    assert r.returncode == 2 and "--engine: unknown engine 'nope'" in r.stderr


def test_sql_transactions_are_refused_clearly(tmp_path: Path, conformance_dir: Path) -> None:
    """Parquet directories have no SQL transactions; saved segments commit another way (services/membership_spark.py)."""
    from sqlglot import exp

    from segmenta.errors import EngineError

    ws = segmenta.Workspace.init(tmp_path / "ws", model=conformance_dir / "model.yaml", engine="spark")
    with pytest.raises(EngineError, match="runs no SQL transactions; saved segments on Spark go through"):
        ws.engine.execute([exp.select("1")])
