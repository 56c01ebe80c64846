"""Dynamics 365 Marketing sends (issue 14): MEMBERS ids to the local fake Dataverse in calls of 1,000.

    python benchmarks/dynamics_send.py --members 2000000 --latency 0.05 --concurrency 16

The fake (tests/destinations/fake_dataverse.py, real HTTP on loopback) answers every call after
a fixed LATENCY. The send goes through the real destination code (token, lookup, create,
groups, throttle, retries) with a synthetic payload, so the figure is the send path itself, not
the engine's read of the members. Prints the total time and where it goes, the calls in flight
(the fake's own count), and the ratio to the fake's lower bound: calls x latency / concurrency.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.destinations.fake_dataverse import FakeAuthority, FakeDataverse  # noqa: E402

from segmenta.destinations.base import Checkpoint, Payload  # noqa: E402
from segmenta.destinations.dynamics import Dynamics365Marketing, DynamicsSettings  # noqa: E402


def _serve(conn: Any, latency: float) -> None:
    """The fake in a process of its own (its own GIL, as the real service is elsewhere); answers queries on ``conn``."""
    with FakeAuthority(tenant="t", client_id="c", client_secret="s") as auth, FakeDataverse(auth, latency=latency) as dv:
        conn.send((auth.url, dv.url))
        while True:
            msg = conn.recv()
            if msg == "stats":
                conn.send(
                    {
                        "members": len(dv.members_of("bench")),
                        "violations": dv.violations,
                        "calls": dict(dv.calls),
                        "max_in_flight": dv.max_in_flight,
                    }
                )
            else:
                return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=2_000_000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_serve, args=(child, args.latency), daemon=True)
    proc.start()
    auth_url, dv_url = parent.recv()
    try:
        settings = DynamicsSettings(segment_name="bench", org_url=dv_url, authority=auth_url, concurrency=args.concurrency)
        dest = Dynamics365Marketing("bench", settings, {"tenant_id": "t", "client_id": "c", "client_secret": "s"})
        t0 = time.perf_counter()
        ids = [{"contactid": i} for i in range(1, args.members + 1)]
        t_rows = time.perf_counter() - t0

        def rows() -> Iterator[list[dict[str, Any]]]:
            for i in range(0, len(ids), 50_000):
                yield ids[i : i + 50_000]

        payload = Payload(
            mode="full",
            segment="bench",
            audience="contact",
            key="contactid",
            columns=["contactid"],
            count=args.members,
            rows=rows,
        )
        saves = 0

        def save(_state: dict[str, Any]) -> None:
            nonlocal saves
            saves += 1

        t1 = time.perf_counter()
        result = dest.send(payload, Checkpoint(resumed=None, save=save))
        total = time.perf_counter() - t1
        parent.send("stats")
        stats = parent.recv()
    finally:
        parent.send("stop")
        proc.join(5)
    assert stats["members"] == args.members and not stats["violations"], stats
    calls = sum(stats["calls"].values())
    bound = calls * args.latency / args.concurrency
    print(
        json.dumps(
            {
                "members": args.members,
                "latency_s": args.latency,
                "concurrency": args.concurrency,
                "total_s": round(total, 2),
                "building_rows_s": round(t_rows, 2),
                "add_calls": stats["calls"]["msdynmkt_AddStaticMembers"],
                "all_calls": calls,
                "checkpoints": saves,
                "max_in_flight_fake": stats["max_in_flight"],
                "max_in_flight_client": result.detail["max_in_flight"],
                "lower_bound_s": round(bound, 2),
                "ratio_to_bound": round(total / bound, 2) if bound else None,
                "calls_per_s": round(calls / total, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
