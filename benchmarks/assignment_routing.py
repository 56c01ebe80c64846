"""Work assignment (issue 12): route new leads through work-assignment segments to sellers.

    python benchmarks/assignment_routing.py --leads 100000 --segments 50 --sellers 200 --batch 10000

Makes a workspace with LEADS leads arriving by ``records upsert`` in batches, SEGMENTS
active segments (country x source, each with one round-robin rule over the sellers of its
country) and SELLERS sellers. Prints the time, assignments per second, round-robin fairness
(max - min per seller within each pool), a double-assignment check (at most one current
decision per lead), and the latency of one lead update against a full re-run.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

COUNTRIES = ["US", "UK", "FR", "DE", "NL", "ES", "IT", "CA", "AU", "CH"]
SOURCES = ["web", "event", "partner", "ads", "referral"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=100_000)
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--sellers", type=int, default=200)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()

    from sqlalchemy import func, select

    import segmenta
    from segmenta.services import records
    from segmenta.services.assignment import Assignments
    from segmenta.services.assignment_rules import Rules
    from segmenta.services.segments import Segments
    from segmenta.store.assignment_models import AssignmentDecision

    root = Path(tempfile.mkdtemp(prefix="segmenta-assignment-bench-"))
    model = {
        "tables": {
            "lead": {
                "key": "leadid",
                "active": {"attribute": "statecode", "equals": 0},
                "columns": {
                    "leadid": {"type": "integer"},
                    "country": {"type": "text"},
                    "source": {"type": "text"},
                    "statecode": {"type": "integer"},
                },
            },
            "seller": {
                "key": "sellerid",
                "columns": {"sellerid": {"type": "integer"}, "country": {"type": "text"}, "capacity": {"type": "integer"}},
            },
        }
    }
    (root / "model.json").write_text(json.dumps(model))
    ws = segmenta.Workspace.init(root / "ws", model=root / "model.json")
    sellers = pa.table(
        {
            "sellerid": list(range(1, args.sellers + 1)),
            "country": [COUNTRIES[i % len(COUNTRIES)] for i in range(args.sellers)],
            "capacity": [args.leads] * args.sellers,
        }
    )
    pacsv.write_csv(sellers, root / "seller.csv")
    ws.load("seller", root / "seller.csv")
    ws.close()
    rng = random.Random(7)
    with Segments.open(root / "ws") as segs:
        wa = Assignments(segs)
        rules = Rules(wa)
        pairs = [(c, s) for c in COUNTRIES for s in SOURCES][: args.segments]
        for c, s in pairs:
            where = {
                "all": [
                    {"attribute": "country", "op": "eq", "value": c},
                    {"attribute": "source", "op": "eq", "value": s},
                ]
            }
            name = f"{c}-{s}"
            wa.create({"audience": "lead", "groups": [{"where": where}]}, name=name)
            rules.add(name, {"name": "rr", "pool": {"table": "seller", "match": [{"seller": "country", "record": "country"}]}})
            rules.set_active(name, "rr", True)
            wa.activate(name)
        started = time.perf_counter()
        for start in range(1, args.leads + 1, args.batch):
            keys = range(start, min(start + args.batch, args.leads + 1))
            rows = [
                {"leadid": k, "country": rng.choice(COUNTRIES), "source": rng.choice(SOURCES + ["other"]), "statecode": 0}
                for k in keys
            ]
            p = root / "batch.ndjson"
            p.write_text("".join(json.dumps(r) + "\n" for r in rows))
            records.upsert(segs, "lead", p)
        elapsed = time.perf_counter() - started
        with segs.store.session() as s:
            current = s.execute(
                select(AssignmentDecision.key, func.count())
                .where(AssignmentDecision.current)
                .group_by(AssignmentDecision.key)
                .having(func.count() > 1)
            ).all()
            per_seller = Counter(
                dict(
                    s.execute(
                        select(AssignmentDecision.seller, func.count())
                        .where(AssignmentDecision.current, AssignmentDecision.status == "assigned")
                        .group_by(AssignmentDecision.seller)
                    ).all()
                )
            )
            assigned = sum(per_seller.values())
        by_country: dict[str, list[int]] = {}
        for i in range(args.sellers):
            by_country.setdefault(COUNTRIES[i % len(COUNTRIES)], []).append(per_seller.get(str(i + 1), 0))
        spread = max(max(v) - min(v) for v in by_country.values())
        print(f"{args.leads:,} leads, {args.segments} segments, {args.sellers} sellers, batches of {args.batch:,}")
        print(f"routed and assigned in {elapsed:.1f} s: {assigned:,} assignments, {assigned / elapsed:,.0f} per second")
        print(f"round-robin fairness: max - min per seller within a pool = {spread}")
        print(f"leads with more than one current decision: {len(current)}")
        p = root / "one.ndjson"
        p.write_text(json.dumps({"leadid": 1, "country": "UK", "source": "web"}) + "\n")
        t = time.perf_counter()
        records.upsert(segs, "lead", p)
        one = time.perf_counter() - t
        t = time.perf_counter()
        wa.rerun("lead")
        full = time.perf_counter() - t
        print(f"one lead update to its new assignment: {one * 1000:.0f} ms; re-running every segment in full: {full:.1f} s")
    import shutil

    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
