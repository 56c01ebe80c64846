"""Batch and real time agree (issue 11 item 4), through the Python API on the lifecycle tests' small CRM.

- After record changes written in real time, ``segment refresh`` of every live dynamic segment
  finds nothing to change: no event, the log's last offset unchanged.
- With real-time processing stopped (the change applied with ``records.apply_changes`` and its
  pending batch forgotten, or new data put in with ``load``), the stored membership lags; a
  refresh catches up and emits exactly the missing events: entered = fresh - stored,
  exited = stored - fresh, each key once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from segmenta import clock
from segmenta.services import events, incremental, records
from segmenta.services.segments import Segments
from tests.lifecycle.conftest import T0, write_csv

UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
CLICKERS = {
    "audience": "contact",
    "groups": [{"where": {"related": "interactions", "where": {"attribute": "type", "op": "eq", "value": "email_click"}}}],
}
UK_CLICKERS = {
    "audience": "contact",
    "groups": [{"where": {"in_segment": "clickers"}}, {"link": "and_also", "where": {"in_segment": "uk"}}],
}
#: In dependency order: a reader after what it reads.
SEGMENTS = {"uk": UK, "clickers": CLICKERS, "uk-clickers": UK_CLICKERS}


@pytest.fixture
def segs(template_ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SEGMENTA_NOW", T0)
    monkeypatch.delenv("SEGMENTA_STORE_URL", raising=False)
    shutil.copytree(template_ws, tmp_path / "ws")
    with Segments.open(tmp_path / "ws") as opened:
        for name, definition in SEGMENTS.items():
            opened.create(definition, name=name)
            opened.publish(name)
        yield opened


def ndjson(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def fresh(segs: Segments, name: str) -> set[Any]:
    return set(segs.ws.evaluate(incremental.live_dynamic(segs)[name], as_of=clock.now()).keys)


def stored(segs: Segments, name: str) -> set[Any]:
    return set(segs.members(name)[1])


CHANGES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("interaction", [{"interactionid": 10, "contactid": 5, "type": "email_click"}], False),
    ("contact", [{"contactid": 2, "country": "UK"}, {"contactid": 3, "statecode": 1}], False),
    ("interaction", [{"interactionid": 1}], True),
    ("contact", [{"contactid": 8, "email": "h@example.com", "country": "UK", "statecode": 0}], False),
    ("interaction", [{"interactionid": 11, "contactid": 8, "type": "email_click"}], False),
]


def test_a_refresh_after_real_time_changes_emits_nothing(segs: Segments, tmp_path: Path) -> None:
    for i, (table, rows, delete) in enumerate(CHANGES):
        f = ndjson(tmp_path / f"{i}.ndjson", rows)
        result = (records.delete if delete else records.upsert)(segs, table, f)
        assert result.failed == []
        last = events.last_offset(segs)
        for name in SEGMENTS:
            assert stored(segs, name) == fresh(segs, name), (i, name)
            refreshed = segs.refresh(name)
            assert (refreshed.entered, refreshed.exited) == (0, 0), (i, name)
        assert events.last_offset(segs) == last, f"change {i}: a refresh emitted events"
    assert stored(segs, "uk-clickers") == {5, 8}


def catch_up(segs: Segments) -> None:
    """Refresh each segment in dependency order; the events it made must be exactly the difference it had.

    A refresh also refreshes the segment's ``in_segment`` readers (cause ``dependency``), so a
    reader may pass through the state between its inputs' refreshes: for it the check is on
    the net of its events (replayed onto what it stored, they give the fresh answer, with no
    key entering twice or leaving without being in). For the segments reading no other, every
    event is one key of the difference, each once.
    """
    start = events.last_offset(segs)
    before = {n: stored(segs, n) for n in SEGMENTS}
    for name in SEGMENTS:
        segs.refresh(name)
    made = events.read(segs, after=start)
    assert [e.offset for e in made] == sorted({e.offset for e in made})
    for name in SEGMENTS:
        want = fresh(segs, name)
        assert stored(segs, name) == want, name
        mine = [e for e in made if e.segment == name]
        members = set(before[name])
        for e in mine:
            assert (e.key in members) == (e.change == "exited"), e
            (members.add if e.change == "entered" else members.discard)(e.key)
        assert members == want, name
        if not incremental.segment_reads(incremental.live_dynamic(segs)[name], segs.ws.model).segments:
            assert sorted((e.key, e.change) for e in mine) == sorted(
                [(k, "entered") for k in want - before[name]] + [(k, "exited") for k in before[name] - want]
            ), name


def test_a_refresh_after_real_time_was_stopped_emits_exactly_the_missing_events(segs: Segments, tmp_path: Path) -> None:
    stale = False
    for i, (table, rows, delete) in enumerate(CHANGES):
        applied = records.apply_changes(segs.ws, table, ndjson(tmp_path / f"{i}.ndjson", rows), delete=delete)
        assert applied.batch is not None
        incremental._forget(segs, applied.batch)  # real time stopped: the change's consequences never written
        stale = stale or any(stored(segs, n) != fresh(segs, n) for n in SEGMENTS)
    assert stale, "the changes moved nobody: the test would prove nothing"
    assert incremental.pending_batches(segs) == []
    catch_up(segs)
    last = events.last_offset(segs)
    for name in SEGMENTS:  # caught up: a second refresh has nothing to do
        segs.refresh(name)
    assert events.last_offset(segs) == last


def test_a_refresh_after_a_load_emits_exactly_the_missing_events(segs: Segments, tmp_path: Path) -> None:
    contacts = [
        (1, "a@example.com", "FR", 0),
        (2, "b@example.com", "UK", 0),
        (3, "c@example.com", "UK", 1),
        (9, "i@example.com", "UK", 0),
    ]
    segs.ws.load("contact", write_csv(tmp_path / "c.csv", ["contactid", "email", "country", "statecode"], contacts))
    interactions = [(1, 2, "email_click"), (2, 9, "email_click"), (3, 1, "email_open")]
    segs.ws.load("interaction", write_csv(tmp_path / "i.csv", ["interactionid", "contactid", "type"], interactions))
    assert stored(segs, "uk") != fresh(segs, "uk")
    catch_up(segs)
    assert stored(segs, "uk-clickers") == {2, 9}
