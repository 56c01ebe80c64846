"""Estimate latency: POST /api/definitions/estimate over real HTTP on loopback vs the bare engine, one run.

    .venv/bin/python benchmarks/estimate_latency.py [--workspace bench-data/s2m] [--edits 30]

The builder asks for an estimate on every edit, so this replays ~30 edits of two segments:
a one-condition segment (``score > v``) and the core benchmark segment (``core_segment.json``),
changing a value on every edit so no two requests are alike. Each edit is timed three ways,
interleaved so a busy neighbour slows all alike:

- ``http``: the whole request as a client sees it (``segmenta serve`` in a subprocess, httpx
  on 127.0.0.1, bearer token), including auth, validation, compilation and JSON;
- ``engine count``: the same ``SELECT count(*)`` over the compiled member query, run directly
  on a DuckDB connection in this process (the floor the endpoint cannot beat);
- ``ws.evaluate``: ``Workspace.evaluate(...).count`` (fetches the keys; what a script would do).

The service and the baseline each get their own copy of the sample (DuckDB files are one
process each), made in a temporary directory so the shared sample is never written to.
Targets: p95 <= 300 ms for the simple segment; p95 <= 1.2x the engine for the complex one.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlglot import exp

import segmenta

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core_segment import machine, open_or_build  # noqa: E402  (the core benchmark builds the sample the same way)

SIMPLE = {"audience": "contact", "groups": [{"where": {"attribute": "score", "op": "gt", "value": 50}}]}


def edit(definition: dict[str, Any], i: int, *, complex_: bool) -> dict[str, Any]:
    """The i-th edit: one value changed (the spend threshold of the core segment, the score of the simple one)."""
    d = copy.deepcopy(definition)
    if complex_:
        d["groups"][2]["where"]["value"] = 1000 + 7 * i
    else:
        d["groups"][0]["where"]["value"] = 20 + 1.5 * i
    return d


def count_query(ws: segmenta.Workspace, definition: dict[str, Any], as_of: str) -> exp.Select:
    query = ws.compile(definition, as_of=as_of)
    query.set("order", None)
    return exp.select(exp.Count(this=exp.Star())).from_(query.subquery("m"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_workspace(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in ("model.yaml", "segmenta.yaml", "data.duckdb", "data.duckdb.wal"):
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    return target


def start_service(workspace: Path, as_of: str) -> tuple[subprocess.Popen[str], str, str, list[str]]:
    """``segmenta serve`` on a free loopback port; (process, base URL, the first admin's token, output lines)."""
    port = free_port()
    env = {**os.environ, "SEGMENTA_NOW": as_of}
    cmd = [
        sys.executable,
        "-m",
        "segmenta",
        "--workspace",
        str(workspace),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the service did not start:\n" + "".join(lines))
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    token = re.search(r"Bearer \.\.\.\): (\S+)", "".join(lines))
    if token is None:
        raise SystemExit("no first-start token printed (was the copy's store not fresh?)")
    return proc, base, token.group(1), lines


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_segment(
    name: str, base_def: dict[str, Any], complex_: bool, client: httpx.Client, ws: segmenta.Workspace, edits: int, as_of: str
) -> dict[str, Any]:
    times: dict[str, list[float]] = {"http": [], "server": [], "engine count": [], "ws.evaluate": []}
    for i in range(-2, edits):  # two warm-up edits, not recorded
        d = edit(base_def, i, complex_=complex_)
        http_ms, response = timed(lambda d=d: client.post("/api/definitions/estimate", json={"definition": d, "as_of": as_of}))
        response.raise_for_status()
        body = response.json()
        engine_ms, engine_count = timed(lambda d=d: ws.engine.run(count_query(ws, d, as_of)).column(0)[0].as_py())
        eval_ms, evaluated = timed(lambda d=d: ws.evaluate(d, as_of=as_of).count)
        if not body["count"] == engine_count == evaluated:
            raise SystemExit(f"{name} edit {i}: counts differ: http {body['count']}, engine {engine_count}, evaluate {evaluated}")
        if i >= 0:
            for key, value in (
                ("http", http_ms),
                ("server", body["elapsed_ms"]),
                ("engine count", engine_ms),
                ("ws.evaluate", eval_ms),
            ):
                times[key].append(value)
    print(f"\n{name}: {edits} edits (count of the last: {body['count']:,})")
    print(f"  {'':14} {'p50 ms':>9} {'p95 ms':>9}")
    for key, values in times.items():
        print(f"  {key:14} {statistics.median(values):9.1f} {pct(values, 95):9.1f}")
    return {k: (statistics.median(v), pct(v, 95)) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("bench-data/s2m"))
    parser.add_argument("--contacts", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--as-of", default="2026-10-27T12:00:00")
    args = parser.parse_args()
    from segmenta.clock import parse_instant

    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    if not (args.workspace / "model.yaml").is_file():  # build it once; never open the shared sample otherwise (others read it)
        open_or_build(args.workspace, args.contacts, args.seed, parse_instant(args.as_of)).close()
    core = json.loads((HERE / "core_segment.json").read_text())
    with tempfile.TemporaryDirectory(prefix="segmenta-estimate-") as tmp:
        served = copy_workspace(args.workspace, Path(tmp) / "served")
        baseline = segmenta.Workspace.open(copy_workspace(args.workspace, Path(tmp) / "baseline"))
        proc, base, token, _lines = start_service(served, args.as_of)
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
                simple = run_segment("one condition (score > v)", SIMPLE, False, client, baseline, args.edits, args.as_of)
                complex_ = run_segment("core benchmark segment", core, True, client, baseline, args.edits, args.as_of)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            baseline.close()
    print("\nratios (p95 http / p95 engine count; p95 http / p95 ws.evaluate):")
    for name, t in (("simple", simple), ("complex", complex_)):
        print(f"  {name:8} {t['http'][1] / t['engine count'][1]:.2f}x   {t['http'][1] / t['ws.evaluate'][1]:.2f}x")
    simple_ok = simple["http"][1] <= 300
    complex_ok = complex_["http"][1] <= 1.2 * complex_["engine count"][1]
    print(
        f"targets: simple p95 <= 300 ms: {'met' if simple_ok else 'MISSED'}; complex p95 <= 1.2x engine count: {'met' if complex_ok else 'MISSED'}"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (above {os.cpu_count()} the machine was shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
