"""CSV segment: a 2,000,000-row CSV of emails matched against 2,000,000 contacts and stored as a
static list (``segment import-csv``), beside a hand-written DuckDB join of the same file, same run.

    .venv/bin/python benchmarks/csv_import.py [--workspace bench-data/lifecycle-2m] [--rows 2000000] [--runs 3]

The file mixes addresses of active and inactive contacts (upper-cased and padded with spaces
at random), addresses nobody has, empty cells and repeats. segmenta's figure is the whole
``import_csv`` call: read and check the file, match, add the members with their history, update
the store, count, and write the not-found file. The baseline is the same join written by hand
on the same DuckDB connection (read_csv, lower(trim()), active contacts, distinct keys, counts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("SEGMENTA_NOW", "2026-10-27T12:00:00")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.refresh import ROOT, prepare  # noqa: E402

from segmenta.services.csvimport import import_csv  # noqa: E402
from segmenta.services.segments import Segments  # noqa: E402

HANDWRITTEN = """
CREATE OR REPLACE TEMP TABLE bench_f AS SELECT email, nullif(lower(trim(email)), '') AS addr FROM read_csv('{file}', header = true, all_varchar = true);
CREATE OR REPLACE TEMP TABLE bench_m AS
  SELECT c.contactid, lower(trim(c.email)) AS addr FROM contact c
  WHERE c.statecode = 0 AND lower(trim(c.email)) IN (SELECT addr FROM bench_f);
CREATE OR REPLACE TEMP TABLE bench_members AS SELECT DISTINCT contactid FROM bench_m;
SELECT count(*) AS read, count(*) FILTER (WHERE addr IN (SELECT addr FROM bench_m)) AS found,
       count(addr) - count(DISTINCT addr) AS duplicates, (SELECT count(*) FROM bench_members) AS members FROM bench_f;
"""


def make_csv(con: object, path: Path, rows: int) -> None:
    """``rows`` emails: 55% contacts' (case/space variants), 30% unknown, 5% empty, 10% repeats."""
    sql = f"""
    COPY (
      WITH contacts AS (SELECT row_number() OVER () - 1 AS n, email FROM contact WHERE email IS NOT NULL),
      nc AS (SELECT count(*) AS n FROM contacts),
      picks AS (
        SELECT i, hash(i) % 100 AS bucket, hash(i * 7 + 1) AS h, hash(i * 7 + 1) % (SELECT n FROM nc) AS pick
        FROM range({rows}) t(i)
      )
      -- a join, not a subquery per row: DuckDB ran the correlated form as a nested loop (2M x 2M)
      SELECT CASE
        WHEN bucket < 55 THEN CASE WHEN h % 3 = 0 THEN upper(c.email) WHEN h % 3 = 1 THEN '  ' || c.email || ' ' ELSE c.email END
        WHEN bucket < 85 THEN 'nobody' || i || '@nowhere.example'
        WHEN bucket < 90 THEN ''
        ELSE 'nobody' || (i % 1000) || '@nowhere.example' END AS Email,
        i AS row_no
      FROM picks LEFT JOIN contacts c ON c.n = picks.pick ORDER BY i
    ) TO '{path}' (HEADER, FORMAT csv)"""
    con.execute(sql)  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path, default=ROOT / "bench-data" / "lifecycle-2m")
    ap.add_argument("--contacts", type=int, default=2_000_000)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    path = prepare(args.workspace, args.contacts)
    csv_file = path / f"emails-{args.rows}.csv"
    ours: list[float] = []  # matched and stored as a static list: the figure
    ours_nf: list[float] = []  # the same, also writing the not-found rows to a CSV (--not-found)
    hand: list[float] = []
    with Segments.open(path) as segs:
        con = segs.ws.engine.con  # type: ignore[attr-defined]
        if not csv_file.exists():
            make_csv(con, csv_file, args.rows)
        for i in range(args.runs):
            segs.create_list(audience="contact", name=f"bench list {i}")
            start = time.perf_counter()
            got = import_csv(segs, f"bench list {i}", csv_file)
            ours.append(time.perf_counter() - start)
            segs.create_list(audience="contact", name=f"bench list nf {i}")
            start = time.perf_counter()
            got_nf = import_csv(segs, f"bench list nf {i}", csv_file, not_found=path / "not-found.csv")
            ours_nf.append(time.perf_counter() - start)
            assert got_nf == got
            start = time.perf_counter()
            statements = [s for s in HANDWRITTEN.format(file=csv_file).split(";") if s.strip()]
            for s in statements[:-1]:
                con.execute(s)
            counts = con.execute(statements[-1]).fetchone()
            hand.append(time.perf_counter() - start)
        contacts = con.execute("SELECT count(*) FROM contact").fetchone()[0]
    print(f"file: {args.rows:,} rows; contacts: {contacts:,}; runs: {args.runs} (median, min)")
    print(
        f"segmenta import-csv: read {got.read:,} found {got.found:,} not_found {got.not_found:,} "
        f"duplicates {got.duplicates:,} members {got.members:,}"
    )
    print(f"hand-written join:   read {counts[0]:,} found {counts[1]:,} duplicates {counts[2]:,} members {counts[3]:,}")
    assert (got.read, got.found, got.duplicates, got.members) == tuple(counts), "segmenta and the hand-written join disagree"
    o, onf, h = statistics.median(ours), statistics.median(ours_nf), statistics.median(hand)
    print(f"segmenta import-csv end to end (check, match, store members + history):  {o:.3f} s (min {min(ours):.3f})")
    print(f"  the same plus writing the {got.not_found:,} not-found rows (--not-found):  {onf:.3f} s (min {min(ours_nf):.3f})")
    print(f"hand-written DuckDB join (counts + distinct members only):               {h:.3f} s (min {min(hand):.3f})")
    print(f"ratio {o / h:.2f}; target <= 1.5 s end to end: {'met' if o <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
