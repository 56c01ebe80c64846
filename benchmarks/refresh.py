"""Refresh overhead: a dynamic segment's refresh (membership replaced + history recorded + store
metadata) against a bare evaluation of the same definition, same data, same run.

    .venv/bin/python benchmarks/refresh.py [--workspace bench-data/lifecycle-2m] [--contacts 2000000] [--runs 5]

The workspace is a copy of bench-data/s2m (the core benchmark's 2M-contact sample) when that
exists, else a fresh sample. Bare evaluation = validate, compile and run the definition,
members returned as Arrow (``segment evaluate`` without the Python list). Refresh = ``Segments.refresh`` end to end. Steady state (the data does not
change between refreshes, so history grows by nothing) and a changed-data refresh are both shown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("SEGMENTA_NOW", "2026-10-27T12:00:00")

import segmenta  # noqa: E402
from segmenta.services.segments import Segments  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = {
    "name": "Clicked in 90 days, Gold or Silver, outside France",
    "audience": "contact",
    "groups": [
        {
            "where": {
                "related": "interactions",
                "where": {
                    "all": [
                        {"attribute": "type", "op": "eq", "value": "email_click"},
                        {"attribute": "ts", "op": "in_last", "value": {"days": 90}},
                    ]
                },
            }
        },
        {"link": "and_also", "where": {"attribute": "tier", "op": "in", "value": ["Gold", "Silver"]}},
        {"link": "but_not", "where": {"attribute": "country", "op": "eq", "value": "FR"}},
    ],
}


def prepare(path: Path, contacts: int) -> Path:
    """A private 2M-contact workspace (copied from bench-data/s2m when present); a fresh store each run."""
    if not (path / "model.yaml").exists():
        source = ROOT / "bench-data" / "s2m"
        if (source / "model.yaml").exists():
            shutil.copytree(source, path)
        else:
            segmenta.Workspace.init(path, sample=True, contacts=contacts, seed=42).close()
    (path / "store.sqlite").unlink(missing_ok=True)
    for extra in ("store.sqlite-wal", "store.sqlite-shm"):
        (path / extra).unlink(missing_ok=True)
    ws = segmenta.Workspace.open(path)
    ws.engine.con.execute("DROP SCHEMA IF EXISTS segmenta CASCADE")  # type: ignore[attr-defined]
    ws.close()
    return path


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path, default=ROOT / "bench-data" / "lifecycle-2m")
    ap.add_argument("--contacts", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    path = prepare(args.workspace, args.contacts)
    with Segments.open(path) as segs:
        segs.create(DEFINITION, name="bench")
        first = timed(lambda: segs.publish("bench"))
        size = segs.show("bench")["size"]
        bare: list[float] = []
        refresh: list[float] = []
        for _ in range(args.runs):  # alternate, so machine load hits both alike
            bare.append(timed(lambda: segs.ws.engine.run(segs.ws.compile(DEFINITION))))
            refresh.append(timed(lambda: segs.refresh("bench")))
        history_rows = sum(r["entered"] + r["exited"] for r in segs.history("bench") if r["status"] == "done")
    b, r = statistics.median(bare), statistics.median(refresh)
    n = segmenta.Workspace.open(path)
    contacts = n.engine.run("SELECT count(*) FROM contact").column(0)[0].as_py()
    n.close()
    print(f"contacts: {contacts:,}; members: {size:,}; runs: {args.runs} (medians); python {sys.version.split()[0]}")
    print(f"first publish (all members enter history): {first:.3f} s")
    print(f"bare evaluation (validate + compile + engine.run, members as Arrow): {b:.3f} s   (min {min(bare):.3f})")
    print(f"refresh with history (Segments.refresh end to end): {r:.3f} s   (min {min(refresh):.3f})")
    pairs = statistics.median(x / y for x, y in zip(refresh, bare, strict=True))
    print(
        f"overhead: {100 * (r / b - 1):+.1f}% of medians (ratio {r / b:.2f}); median of paired ratios {pairs:.2f}; "
        f"ratio of minimums {min(refresh) / min(bare):.2f}"
    )
    print(f"history rows after {args.runs + 1} refreshes: {history_rows:,} (grows with changes, not size x refreshes)")
    print("timings bare:    " + " ".join(f"{x:.3f}" for x in bare))
    print("timings refresh: " + " ".join(f"{x:.3f}" for x in refresh))


if __name__ == "__main__":
    main()
