"""First writes of several segments at once on PostgreSQL: the shared runs table is created once,
whoever wins the race, and every write commits (a service publishes concurrently)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from segmenta.membership import values_query
from segmenta.model.schema import ColumnType
from tests.engines.helpers import drop, workspace_on
from tests.lifecycle.conftest import MODEL

pytest_plugins = ["tests.engines.fixtures"]
WRITERS = 6


def test_first_writes_of_many_segments_at_once_all_commit(pg_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    ws = workspace_on("postgres", request, tmp_path / "ws", model=tmp_path / "model.json")
    try:
        start = threading.Barrier(WRITERS)
        errors: list[BaseException] = []

        def write(segment_id: int) -> None:
            m = ws.engine.membership_store(segment_id, "contactid", ColumnType.INTEGER)
            start.wait()
            try:
                m.add(
                    values_query("contactid", [segment_id, 100 + segment_id]),
                    run_id=segment_id,
                    at=dt.datetime(2026, 10, 1),
                    version=None,
                )
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(1, WRITERS + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        for i in range(1, WRITERS + 1):
            m: Any = ws.engine.membership_store(i, "contactid", ColumnType.INTEGER)
            assert m.keys() == [i, 100 + i]
            record = m.committed(i)
            assert record is not None and (record.entered, record.size) == (2, 2)
    finally:
        drop(ws)


def test_two_writes_of_one_segment_at_once_take_turns(pg_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The second of two concurrent evaluations of ONE segment waits for the first to commit: each run
    gets its own commit order (``latest()`` is the one that committed last) and the second's changes
    are counted against the first's members, not against the members both started from."""
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    ws = workspace_on("postgres", request, tmp_path / "ws", model=tmp_path / "model.json")
    try:
        m: Any = ws.engine.membership_store(1, "contactid", ColumnType.INTEGER)
        m.ensure()
        first_in_commit, second_done = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def hold_commit() -> None:
            first_in_commit.set()
            second_done.wait(timeout=3)  # without turns the second write commits meanwhile

        def evaluate(run_id: int, keys: list[int], before_commit: Any = None) -> None:
            store = ws.engine.membership_store(1, "contactid", ColumnType.INTEGER)
            try:
                store.replace(
                    values_query("contactid", keys),
                    run_id=run_id,
                    at=dt.datetime(2026, 10, run_id),
                    version=1,
                    before_commit=before_commit,
                )
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                if before_commit is None:
                    second_done.set()

        first = threading.Thread(target=evaluate, args=(1, [1, 2], hold_commit))
        first.start()
        assert first_in_commit.wait(timeout=60)
        second = threading.Thread(target=evaluate, args=(2, [2, 3]))
        second.start()
        first.join(timeout=120)
        second.join(timeout=120)
        assert errors == []
        rows = ws.engine.run(
            f'SELECT refresh_id, seq FROM "{ws.engine.meta_schema}".segment_runs WHERE segment_id = 1 ORDER BY refresh_id'
        ).to_pylist()
        assert [(r["refresh_id"], r["seq"]) for r in rows] == [(1, 1), (2, 2)]
        latest = m.latest()
        assert latest is not None and latest.run_id == 2
        assert m.keys() == [2, 3]  # the second replaced the first's members: 1 exited, 3 entered
        assert m.changes(2) == (1, 1) and latest.size == 2
    finally:
        drop(ws)
