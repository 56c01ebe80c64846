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
