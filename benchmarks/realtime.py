"""Real-time segments: record changes in, membership events out, against re-running the affected segments in full.

    .venv/bin/python benchmarks/realtime.py [--contacts 2000000] [--segments 250] [--batches 5] [--singles 200]

Data: the sample CRM (``--contacts`` contacts; bench-data/rt-<N> is generated once and reused),
with ``--segments`` live dynamic segments of mixed kinds, generated from five templates with
varying parameters: attribute (tier, country, score), path (the contact's account industry),
behaviour (clicks in a window, at least N), aggregate / measure (spend, average order value)
and ``in_segment`` (of an earlier generated segment, plus an attribute).

Measured in the same run:

1. throughput: batches of ``--batch`` mixed record changes (contact updates, new orders, new
   interactions, account updates) through ``records.upsert``: changes per second, the change
   and every membership event committed when a call returns;
2. latency: ``--singles`` single-record changes, each timed from the call to its committed
   events (p50, p99);
3. baseline: the same kind of batch, then the segments it touched refreshed IN FULL (what a
   scheduled refresh does), changes per second;
4. a clock move that expires about 1% of a window segment's members: the incremental clock
   move against a full refresh of that segment.

Every figure is printed with its baseline and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

NOW = "2026-10-27T12:00:00"
os.environ["SEGMENTA_NOW"] = NOW

import segmenta  # noqa: E402
from segmenta import clock  # noqa: E402
from segmenta.services import events, incremental, records  # noqa: E402
from segmenta.services.segments import Segments  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COUNTRIES = ["US", "UK", "DE", "FR", "ES", "IT", "NL", "CA", "AU", "JP"]
TIERS = ["Gold", "Silver", "Bronze"]
INDUSTRIES = ["Retail", "Tech", "Finance", "Health", "Manufacturing", "Education"]


def definitions(n: int, rng: random.Random) -> list[dict]:
    """``n`` segment definitions of mixed kinds (attribute, path, behaviour in a window, aggregate/measure, in_segment)."""
    out: list[dict] = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            where = {
                "all": [
                    {"attribute": "tier", "op": "eq", "value": rng.choice(TIERS)},
                    {"attribute": "score", "op": "gt", "value": rng.randint(20, 90)},
                ]
            }
        elif kind == 1:
            where = {
                "all": [
                    {"path": ["account"], "attribute": "industry", "op": "eq", "value": rng.choice(INDUSTRIES)},
                    {"attribute": "country", "op": "eq", "value": rng.choice(COUNTRIES)},
                ]
            }
        elif kind == 2:
            where = {
                "related": "interactions",
                "where": {
                    "all": [
                        {"attribute": "type", "op": "eq", "value": rng.choice(["email_click", "email_open", "web_visit"])},
                        {"attribute": "ts", "op": "in_last", "value": {"days": rng.choice([30, 60, 90])}},
                    ]
                },
                "count": {"op": "gte", "value": rng.randint(1, 3)},
            }
        elif kind == 3:
            where = (
                {"measure": "avg_order_value", "op": "gt", "value": rng.randint(80, 200)}
                if rng.random() < 0.5
                else {"measure": "total_spend", "op": "gt", "value": rng.randint(300, 3000)}
            )
        else:
            where = {
                "all": [
                    {"in_segment": f"rt-{i - rng.choice([1, 2, 3, 4])}"},
                    {"attribute": "donotemail", "op": "is_false"},
                ]
            }
        out.append({"name": f"rt-{i}", "audience": "contact", "groups": [{"where": where}]})
    return out


def prepare(contacts: int, segments: int, rng: random.Random) -> Path:
    """A copy of the generated workspace with ``segments`` live segments (published once, cached)."""
    base = ROOT / "bench-data" / f"rt-{contacts}-{segments}"
    if not (base / ".ready").exists():
        shutil.rmtree(base, ignore_errors=True)
        t = time.perf_counter()
        segmenta.Workspace.init(base, sample=True, contacts=contacts, seed=42).close()
        print(f"generated {contacts:,} contacts in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        with Segments.open(base) as segs:
            for d in definitions(segments, rng):
                path = base / f"{d['name']}.json"
                path.write_text(json.dumps(d))
                segs.create(path, name=d["name"])
                segs.publish(d["name"])
        print(f"published {segments} segments in {time.perf_counter() - t:.1f} s", flush=True)
        (base / ".ready").write_text("ok")
    work = Path(tempfile.mkdtemp(prefix="segmenta-rt-"))
    shutil.copytree(base, work / "ws")
    return work / "ws"


def change_batch(size: int, ws: segmenta.Workspace, rng: random.Random, counters: dict[str, int]) -> list[tuple[str, list[dict]]]:
    """``size`` mixed changes, by table: contact updates (40%), new orders (25%), new interactions (30%), account updates (5%)."""
    contacts = counters["contacts"]
    by: dict[str, list[dict]] = {"contact": [], "order": [], "interaction": [], "account": []}
    for _ in range(size):
        r = rng.random()
        c = rng.randint(1, contacts)
        if r < 0.40:
            by["contact"].append({"contactid": c, "tier": rng.choice(TIERS), "score": rng.randint(0, 100)})
        elif r < 0.65:
            counters["order"] += 1
            by["order"].append(
                {
                    "orderid": counters["order"],
                    "contactid": c,
                    "amount": round(rng.uniform(5, 400), 2),
                    "ts": NOW,
                    "channel": "web",
                }
            )
        elif r < 0.95:
            counters["interaction"] += 1
            by["interaction"].append(
                {
                    "interactionid": counters["interaction"],
                    "contactid": c,
                    "type": rng.choice(["email_click", "email_open", "web_visit"]),
                    "ts": NOW,
                }
            )
        else:
            by["account"].append({"accountid": rng.randint(1, counters["accounts"]), "industry": rng.choice(INDUSTRIES)})
    # one contact row per key per batch file keeps the MERGE simple; later rows of a key win anyway
    return [(t, rows) for t, rows in by.items() if rows]


def apply(segs: Segments, tmp: Path, batch: list[tuple[str, list[dict]]]) -> list[str]:
    touched: list[str] = []
    for table, rows in batch:
        f = tmp / f"{table}.ndjson"
        f.write_text("\n".join(json.dumps(r) for r in rows))
        result = records.upsert(segs, table, f)
        touched += [n for n in result.refreshed if n not in touched]
    return touched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=2_000_000)
    ap.add_argument("--segments", type=int, default=250)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--singles", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    path = prepare(args.contacts, args.segments, rng)
    tmp = path.parent
    try:
        with Segments.open(path) as segs:
            ws = segs.ws
            counters = {
                "contacts": args.contacts,
                "accounts": int(ws.engine.column('SELECT MAX(accountid) FROM "account"')[0]),
                "order": int(ws.engine.column('SELECT MAX(orderid) FROM "order"')[0]),
                "interaction": int(ws.engine.column('SELECT MAX(interactionid) FROM "interaction"')[0]),
            }
            first = events.last_offset(segs)

            # 1. throughput, incremental
            seconds, changes, touched_counts = 0.0, 0, []
            for _ in range(args.batches):
                batch = change_batch(args.batch, ws, rng, counters)
                t = time.perf_counter()
                touched = apply(segs, tmp, batch)
                seconds += time.perf_counter() - t
                changes += sum(len(r) for _, r in batch)
                touched_counts.append(len(touched))
            rate = changes / seconds
            made = events.last_offset(segs) - first
            print(
                f"incremental: {changes:,} changes in {seconds:.2f} s = {rate:,.0f} changes/s "
                f"({statistics.mean(touched_counts):.0f} segments written per batch on average, {made:,} events)",
                flush=True,
            )

            # 2. latency of one change to its committed events
            lat: list[float] = []
            for _ in range(args.singles):
                c = rng.randint(1, args.contacts)
                f = tmp / "one.ndjson"
                f.write_text(json.dumps({"contactid": c, "tier": rng.choice(TIERS), "score": rng.randint(0, 100)}))
                t = time.perf_counter()
                records.upsert(segs, "contact", f)
                lat.append((time.perf_counter() - t) * 1000)
            lat.sort()
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(f"latency of one change to its committed events: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)

            # 3. baseline: apply the change only, then refresh the touched segments in full
            seconds_b, changes_b = 0.0, 0
            for _ in range(max(1, args.batches // 2)):
                batch = change_batch(args.batch, ws, rng, counters)
                t = time.perf_counter()
                names: set[str] = set()
                for table, rows in batch:
                    f = tmp / f"{table}.ndjson"
                    f.write_text("\n".join(json.dumps(r) for r in rows))
                    applied = records.apply_changes(ws, table, f, delete=False)
                    names |= _touched(segs, table, applied)
                    if applied.batch is not None:
                        incremental._forget(segs, applied.batch)
                for name in sorted(names):
                    segs.refresh(name)
                seconds_b += time.perf_counter() - t
                changes_b += sum(len(r) for _, r in batch)
            rate_b = changes_b / seconds_b
            print(
                f"baseline (the touched segments re-run in full): {changes_b:,} changes in {seconds_b:.2f} s = {rate_b:,.1f} changes/s"
            )
            print(f"ratio: incremental {rate / rate_b:,.1f}x the baseline's throughput", flush=True)

            # 4. a clock move expiring about 1% of a window segment's members
            clock_move(segs, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _touched(segs: Segments, table: str, applied: records.Applied) -> set[str]:
    """The live segments whose reads include a changed column of ``table`` (what a full re-run would refresh)."""
    from segmenta.compiler.reads import segment_reads

    model = segs.ws.model
    columns = set(model.table(table).columns) if applied.changed is None else applied.changed
    return {n for n, d in incremental.live_dynamic(segs).items() if segment_reads(d, model).touches(table, columns)}


def clock_move(segs: Segments, args: argparse.Namespace) -> None:
    """Two copies of one window segment: one moved incrementally, one refreshed in full, over the same clock move."""
    import datetime as dt

    definition = {
        "name": "clicked-90",
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
            }
        ],
    }
    f = segs.ws.path / "clicked-90.json"
    f.write_text(json.dumps(definition))
    for name in ("clock-incremental", "clock-full"):
        segs.create(f, name=name)
        segs.publish(name)
    size = segs.show("clock-full")["size"]
    # the clock that expires ~1% of the members: the 1st percentile of their last click in the window
    before = clock.now()
    q = (
        "SELECT quantile_disc(last_click, 0.01) FROM (SELECT contactid, MAX(ts) AS last_click FROM interaction "
        f"WHERE type = 'email_click' AND ts >= TIMESTAMP '{(before - dt.timedelta(days=90)).isoformat(sep=' ')}' "
        f"AND ts <= TIMESTAMP '{before.isoformat(sep=' ')}' GROUP BY contactid)"
    )
    edge = segs.ws.engine.column(q)[0]
    after = edge + dt.timedelta(days=90, seconds=1)
    os.environ["SEGMENTA_NOW"] = after.isoformat()
    seg_id = segs.show("clock-incremental")["id"]
    t = time.perf_counter()
    moved = incremental.clock_move(segs, seg_id, before=before)
    inc = time.perf_counter() - t
    t = time.perf_counter()
    full = segs.refresh("clock-full")
    base = time.perf_counter() - t
    assert segs.show("clock-incremental")["size"] == segs.show("clock-full")["size"], "the clock move disagrees with the refresh"
    print(
        f"clock move {before:%Y-%m-%d %H:%M} -> {after:%Y-%m-%d %H:%M}: {moved.exited:,} of {size:,} members expire "
        f"({moved.exited / max(size, 1):.1%}); incremental {inc * 1000:.0f} ms, full refresh {base * 1000:.0f} ms "
        f"({full.exited:,} exited), ratio {base / inc:.1f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
