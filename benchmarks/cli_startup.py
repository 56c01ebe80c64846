"""CLI start-up: ``segmenta --help`` and a whole ``segmenta segment evaluate`` process against bare Python.

    .venv/bin/python benchmarks/cli_startup.py [--workspace bench-data/cli-100k] [--contacts 100000] [--runs 11]

Builds a sample workspace once (``segmenta init --sample``, ``--contacts`` contacts) and reuses it.
Then, interleaved ``--runs`` times after one untimed warm-up round, it times whole processes:

- ``python -c pass`` (the interpreter alone);
- ``segmenta --help``;
- the baseline: a bare Python process that imports duckdb, opens the same database and runs the
  very SQL that segmenta compiles for the core segment (``core_segment.json`` beside this script);
- ``segmenta segment evaluate core_segment.json``, the whole CLI process, twice: first with the
  compiled-SQL cache (``W/cache/compiled``) emptied before each run, so it parses, validates and
  compiles; then repeated, so it replays the SQL compiled before (services/compiled.py).

It prints medians and minimums, ``--help`` against its target (0.25 s) and evaluate's distance
from the baseline (target: within 0.3 s, for the repeated evaluate), with the member counts,
which must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFINITION = HERE / "core_segment.json"
AS_OF = "2026-10-27T12:00:00"
HELP_TARGET_S = 0.25
EVALUATE_MARGIN_S = 0.3

BASELINE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET TimeZone = 'UTC'")
rows = con.execute(open(sys.argv[2], encoding="utf-8").read()).fetchall()
print(f"{len(rows)} members")
"""


def segmenta_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("segmenta")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "segmenta"]


def timed(cmd: list[str], env: dict[str, str], before: Path | None = None) -> tuple[float, str]:
    if before is not None:  # the first evaluation of a definition: nothing compiled before
        shutil.rmtree(before, ignore_errors=True)
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return elapsed, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, default=Path("bench-data/cli-100k"))
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()

    env = {**os.environ, "SEGMENTA_NOW": AS_OF}
    cli = segmenta_cmd()
    ws = args.workspace
    if not (ws / "model.yaml").is_file():
        print(f"building {args.contacts:,} contacts into {ws} ...", file=sys.stderr)
        subprocess.run([*cli, "--workspace", str(ws), "init", "--sample", "--contacts", str(args.contacts)], check=True, env=env)
    sql_file = ws / "core_segment.sql"
    sql = subprocess.run(
        [*cli, "--workspace", str(ws), "segment", "sql", str(DEFINITION), "--as-of", AS_OF],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    sql_file.write_text(sql, encoding="utf-8")

    contenders = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "segmenta --help": [*cli, "--help"],
        "bare python + duckdb (same SQL)": [sys.executable, "-c", BASELINE, str(ws / "data.duckdb"), str(sql_file)],
        "segmenta segment evaluate, first": [*cli, "--workspace", str(ws), "segment", "evaluate", str(DEFINITION)],
        "segmenta segment evaluate": [*cli, "--workspace", str(ws), "segment", "evaluate", str(DEFINITION), "--as-of", AS_OF],
    }
    emptied = {"segmenta segment evaluate, first": ws / "cache" / "compiled"}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, str] = {}
    for round_no in range(args.runs + 1):
        for name, cmd in contenders.items():
            elapsed, stdout = timed(cmd, env, emptied.get(name))
            if round_no:  # round 0 warms the page cache and the interpreter's bytecode cache
                times[name].append(elapsed)
            outputs[name] = stdout.strip().splitlines()[-1] if stdout.strip() else ""

    members_cli = outputs["segmenta segment evaluate"]
    members_bare = outputs["bare python + duckdb (same SQL)"]
    if not members_cli == members_bare == outputs["segmenta segment evaluate, first"]:
        raise SystemExit(f"the evaluations disagree: segmenta {members_cli!r}, bare {members_bare!r}")

    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, load {load:.1f}, {args.runs} runs"
    )
    print(f"workspace {ws} ({members_cli})")
    print(f"{'process':34} {'median s':>9} {'min s':>7}")
    for name in contenders:
        print(f"{name:34} {med[name]:9.3f} {low[name]:7.3f}")
    help_s = med["segmenta --help"]
    bare, ev = med["bare python + duckdb (same SQL)"], med["segmenta segment evaluate"]
    print(f"--help: {help_s:.3f} s (target <= {HELP_TARGET_S} s: {'met' if help_s <= HELP_TARGET_S else 'NOT met'})")
    first = med["segmenta segment evaluate, first"]
    print(f"evaluate, first (compiles): {first:.3f} s = bare {bare:.3f} s + {first - bare:.3f} s")
    print(
        f"evaluate, repeated: {ev:.3f} s = bare {bare:.3f} s + {ev - bare:.3f} s, ratio {ev / bare:.2f} "
        f"(target within {EVALUATE_MARGIN_S} s: {'met' if ev - bare <= EVALUATE_MARGIN_S else 'NOT met'})"
    )
    if args.json:
        figures = {"median_s": med, "min_s": low, "runs": args.runs, "load": load, "members": members_cli}
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
