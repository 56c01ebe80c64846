"""The core segment on PostgreSQL: segmenta vs hand-written SQL on the same server and data, in one run.

    .venv/bin/python benchmarks/postgres_core_segment.py [--workspace bench-data/pg1m] [--contacts 1000000] [--runs 7]
        [--url postgresql://postgres@127.0.0.1:5432/test]   # default: $SEGMENTA_POSTGRES_URL, else this one

Builds the sample CRM (``--contacts`` contacts, about 10 interactions and 3 orders each) with
segmenta's generator, loaded through segmenta into a PostgreSQL workspace (its own schema), once;
later runs reuse it. The segment is ``core_segment.json`` (see core_segment.py). Contenders:
``ws.evaluate`` (validate, compile, render, run, keys back as Python ints), the hand-written SQL
of core_segment.py run through the same engine (same pool, same fetch), and the compiled SQL alone.
Each runs once untimed, then ``--runs`` rounds in rotating order; medians, minima and ratios to
the hand-written SQL are printed. All must return the same members, or the script fails.
``--drop`` removes the workspace's schemas afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from core_segment import DEFINITION, handwritten_sql, machine, measure, report  # noqa: E402

import segmenta  # noqa: E402
from segmenta.clock import parse_instant  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def open_or_build(path: Path, url: str, contacts: int, seed: int, as_of_text: str) -> segmenta.Workspace:
    if (path / "model.yaml").is_file():
        print(f"reusing the sample in {path}")
        return segmenta.Workspace.open(path)
    print(f"building the sample ({contacts:,} contacts, seed {seed}) in PostgreSQL for {path} ...", flush=True)
    os.environ["SEGMENTA_NOW"] = as_of_text
    start = time.perf_counter()
    ws = segmenta.Workspace.init(
        path, sample=True, contacts=contacts, seed=seed, engine="postgres", settings={"postgres": {"url": url}}
    )
    print(f"built and loaded in {time.perf_counter() - start:.1f} s")
    return ws


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("bench-data/pg1m"))
    parser.add_argument("--url", default=os.environ.get("SEGMENTA_POSTGRES_URL") or DEFAULT_URL)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--as-of", default="2026-10-27T12:00:00", help="the clock of the sample and of the evaluation")
    parser.add_argument("--drop", action="store_true", help="drop the workspace's PostgreSQL schemas at the end")
    args = parser.parse_args()
    as_of = parse_instant(args.as_of)

    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    ws = open_or_build(args.workspace, args.url, args.contacts, args.seed, args.as_of)
    engine = ws.engine
    sizes = {t: engine.run(f'SELECT count(*) AS n FROM "{t}"').column(0)[0].as_py() for t in ("contact", "interaction", "order")}
    version = engine.run("SELECT current_setting('server_version') AS v").column(0)[0].as_py()
    print("data: " + ", ".join(f"{n:,} {t}s" for t, n in sizes.items()) + f"; PostgreSQL {version}")
    print(f"as of: {as_of.isoformat()}; runs: 1 warm-up + {args.runs} timed")

    definition = json.loads(DEFINITION.read_text())
    print("\n-- compiled SQL (segmenta, postgres)\n" + ws.sql(definition, dialect="postgres", as_of=as_of))
    compiled_sql = engine.sql(ws.compile(definition, as_of=as_of))
    hand = handwritten_sql(as_of)
    print("\n-- hand-written SQL\n" + hand.strip())

    timings = measure(
        {
            "segmenta ws.evaluate": lambda: ws.evaluate(definition, as_of=as_of).keys,
            "hand-written PostgreSQL SQL": lambda: engine.run(hand).column(0).to_pylist(),
            "  (compiled SQL only)": lambda: engine.run(compiled_sql).column(0).to_pylist(),
        },
        args.runs,
    )
    members = timings["hand-written PostgreSQL SQL"].result
    for name, t in timings.items():
        assert t.result == members, f"{name}: {len(t.result)} members, hand-written SQL: {len(members)}"
    print(f"\nmembers: {len(members):,} (identical for every contender)")
    report(timings, "hand-written PostgreSQL SQL")
    ratio = statistics.median(timings["segmenta ws.evaluate"].wall) / statistics.median(
        timings["hand-written PostgreSQL SQL"].wall
    )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (above {os.cpu_count()} the machine was shared)")
    print(f"segmenta / hand-written on PostgreSQL = {ratio:.2f}")
    if args.drop:
        engine.drop_schemas()  # type: ignore[attr-defined]
    ws.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
