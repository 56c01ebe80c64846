"""The core benchmark segment on DuckDB and on Spark local[N]: same data, same run, same members.

    .venv/bin/python benchmarks/spark_vs_duckdb.py [--contacts 2000000 ...] [--runs 3] [--master local[2]]

For each ``--contacts`` size the sample CRM (10 interactions and 3 orders per contact on
average) is built once into ``bench-data/spark-vs-duckdb/<N>/duckdb`` (reused afterwards) and
copied table by table into a Spark workspace beside it (Parquet, as ``segmenta load`` writes
it), so both engines read identical rows. The segment is ``core_segment.json``. Reported per
engine: the first evaluation (cold: DuckDB opens its file; Spark plans and reads Parquet
footers) and the median of ``--runs`` warm evaluations; for Spark, session start-up is timed
apart. The script fails unless both engines return the same member set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlglot import exp

import segmenta
from segmenta.clock import parse_instant
from segmenta.engines.spark import SparkSettings, session, stop_session

HERE = Path(__file__).resolve().parent
DEFINITION = HERE / "core_segment.json"
ROOT = Path("bench-data/spark-vs-duckdb")


def machine() -> str:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?"
    )
    kib = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    return f"{os.cpu_count()} cores, {kib / 1024**2:.1f} GiB RAM, {cpu}; {platform.system()} {platform.release()}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def build(contacts: int, seed: int, as_of: str) -> tuple[segmenta.Workspace, segmenta.Workspace, dict[str, int]]:
    """The DuckDB sample (built once) and a Spark workspace holding the same rows."""
    base = ROOT / str(contacts)
    duck_path, spark_path = base / "duckdb", base / "spark"
    os.environ["SEGMENTA_NOW"] = as_of
    if not (duck_path / "model.yaml").is_file():
        print(f"  building the sample ({contacts:,} contacts, seed {seed}) ...", flush=True)
        seconds, ws = timed(lambda: segmenta.Workspace.init(duck_path, sample=True, contacts=contacts, seed=seed))
        ws.close()
        print(f"  built in {seconds:.0f} s", flush=True)
    duck = segmenta.Workspace.open(duck_path)
    rows = {
        t: duck.engine.run(exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(t, quoted=True))).column(0)[0].as_py()
        for t in duck.model.tables
    }
    if not (spark_path / "model.yaml").is_file():
        seconds = 0.0
        spark_ws = segmenta.Workspace.init(spark_path, model=duck.model, engine="spark")
        for name, table in duck.model.tables.items():
            data = duck.engine.run(exp.select("*").from_(exp.to_table(name, quoted=True)))
            seconds += timed(lambda name=name, table=table, data=data: spark_ws.engine.replace_table(name, table, data))[0]
        spark_ws.close()
        print(f"  copied to Spark Parquet tables in {seconds:.1f} s (pyarrow write + atomic swap)", flush=True)
    return duck, segmenta.Workspace.open(spark_path, engine="spark"), rows


def measure(ws: segmenta.Workspace, definition: dict[str, Any], as_of: str, runs: int) -> tuple[float, list[float], list[Any]]:
    cold, result = timed(lambda: ws.evaluate(definition, as_of=as_of))
    warm = [timed(lambda: ws.evaluate(definition, as_of=as_of))[0] for _ in range(runs)]
    return cold, warm, result.keys


def one_size(contacts: int, args: argparse.Namespace, definition: dict[str, Any]) -> dict[str, Any]:
    print(f"\n== {contacts:,} contacts", flush=True)
    duck, spark_ws, rows = build(contacts, args.seed, args.as_of)
    print("  rows: " + ", ".join(f"{n:,} {t}" for t, n in rows.items() if t in ("contact", "order", "interaction")), flush=True)
    d_cold, d_warm, d_keys = measure(duck, definition, args.as_of, args.runs)
    duck.close()
    s_cold, s_warm, s_keys = measure(spark_ws, definition, args.as_of, args.runs)
    spark_ws.close()
    assert d_keys == s_keys, f"members differ: DuckDB {len(d_keys):,}, Spark {len(s_keys):,}"
    d_med, s_med = statistics.median(d_warm), statistics.median(s_warm)
    print(f"  members: {len(d_keys):,} on both engines (identical sets)")
    print(f"  DuckDB : first {d_cold:7.3f} s   warm median {d_med:7.3f} s  (runs {', '.join(f'{t:.3f}' for t in d_warm)})")
    print(f"  Spark  : first {s_cold:7.3f} s   warm median {s_med:7.3f} s  (runs {', '.join(f'{t:.3f}' for t in s_warm)})")
    print(f"  ratio  : Spark / DuckDB warm = {s_med / d_med:.1f}x")
    return {
        "contacts": contacts,
        "rows": rows,
        "members": len(d_keys),
        "duckdb_first": d_cold,
        "duckdb_warm": d_med,
        "spark_first": s_cold,
        "spark_warm": s_med,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, nargs="+", default=[2_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--as-of", default="2026-10-27T12:00:00")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.as_of = parse_instant(args.as_of).isoformat()
    os.environ["SEGMENTA_SPARK_MASTER"] = args.master

    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f} (shared with other work)")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    definition = json.loads(DEFINITION.read_text())
    startup, _ = timed(lambda: session(SparkSettings.from_config({})))
    print(f"Spark session start-up ({args.master}): {startup:.1f} s (once per process; not in the query times)")
    results = [one_size(n, args, definition) for n in args.contacts]
    stop_session()
    if args.json:
        args.json.write_text(json.dumps({"spark_startup": startup, "master": args.master, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
