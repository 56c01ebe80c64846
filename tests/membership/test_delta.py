"""One membership store protocol on every engine: writes return what changed, and ``delta(run)``
streams exactly the keys that entered and exited in one refresh or list change (issue 10 item 2).

The same scenario runs on DuckDB and PostgreSQL here (the engine fixture) and on Spark in
``test_delta_spark.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

import segmenta
from segmenta.services.segments import Segments
from segmenta.store.database import Store, resolve_url
from segmenta.types import Changes, MembershipStore
from tests.lifecycle.conftest import CONTACTS, MODEL, write_csv
from tests.lifecycle.test_segments import UK

pytest_plugins = ["tests.engines.fixtures"]

T0, T1 = "2026-10-01T12:00:00", "2026-10-02T12:00:00"


def delta_of(m: MembershipStore, run_id: int) -> dict[str, list[Any]]:
    """The keys of one run's delta, by change, in the order the store streams them."""
    batches = list(m.delta(run_id, batch_size=2))
    assert all(isinstance(b, pa.RecordBatch) and b.schema.names == [m.key, "change"] for b in batches)
    rows = [r for b in batches for r in b.to_pylist()]
    out: dict[str, list[Any]] = {"entered": [], "exited": []}
    for r in rows:
        out[r["change"]].append(r[m.key])
    assert [r["change"] for r in rows] == sorted(r["change"] for r in rows)  # entered first
    return out


def scenario(ws: segmenta.Workspace, tmp: Path, monkeypatch: Any) -> None:
    """Publish, refresh, list add/remove: each write's Changes, committed record and delta agree."""
    monkeypatch.setenv("SEGMENTA_NOW", T0)
    store = Store(resolve_url(ws.path, ws.config))
    try:
        segs = Segments(ws, store)
        segs.create(UK)
        published = segs.publish("UK contacts")
        m = segs.membership(segs._snapshot_of("UK contacts"))
        assert delta_of(m, published.run_id) == {"entered": [1, 3, 5], "exited": []}
        assert (published.entered, published.exited, published.size) == (3, 0, 3)
        record = m.committed(published.run_id)
        assert record is not None and (record.version, record.size, record.entered, record.exited) == (1, 3, 3, 0)

        monkeypatch.setenv("SEGMENTA_NOW", T1)
        rows = [(1, "ann@example.com", "FR", 0), *CONTACTS[1:], (7, "new@example.com", "UK", 0)]
        ws.load("contact", write_csv(tmp / "contact.csv", ["contactid", "email", "country", "statecode"], rows))
        refreshed = segs.refresh("UK contacts")
        assert delta_of(m, refreshed.run_id) == {"entered": [7], "exited": [1]}
        assert (refreshed.entered, refreshed.exited, refreshed.size) == (1, 1, 3)
        assert delta_of(m, published.run_id) == {"entered": [1, 3, 5], "exited": []}  # older runs keep theirs
        latest = m.latest()
        assert latest is not None and latest.run_id == refreshed.run_id
        unchanged = segs.refresh("UK contacts")
        assert delta_of(m, unchanged.run_id) == {"entered": [], "exited": []}

        segs.create_list(audience="contact", name="VIP")
        added = segs.add("VIP", ["6", "2", "3"])
        lst = segs.membership(segs._snapshot_of("VIP"))
        assert delta_of(lst, added.run_id) == {"entered": [2, 3, 6], "exited": []}
        again = segs.add("VIP", ["3", "5"])
        assert delta_of(lst, again.run_id) == {"entered": [5], "exited": []}
        removed = segs.remove("VIP", ["2", "5", "4"])  # 4 was never a member: no change for it
        assert delta_of(lst, removed.run_id) == {"entered": [], "exited": [2, 5]}
        assert (removed.entered, removed.exited, removed.size) == (0, 2, 2)
        assert lst.keys() == [3, 6] and segs.show("VIP")["size"] == 2
        assert lst.committed(added.run_id + 10_000) is None
        assert [h["change"] for h in lst.record_history(5)] == ["entered", "exited"]
    finally:
        store.close()


def test_every_write_returns_changes_and_delta_streams_its_keys(make_ws: Any, tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    ws = make_ws(model=tmp_path / "model.json")
    ws.load("contact", write_csv(tmp_path / "c.csv", ["contactid", "email", "country", "statecode"], CONTACTS))
    scenario(ws, tmp_path, monkeypatch)


def test_the_engine_chooses_a_store_that_follows_the_protocol(make_ws: Any, tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    ws = make_ws(model=tmp_path / "model.json")
    m = ws.engine.membership_store(1, "contactid", ws.model.table("contact").column("contactid").type)
    assert isinstance(m, MembershipStore)
    assert not m.exists() and m.size() == 0 and m.keys() == [] and m.latest() is None
    m.ensure()
    assert m.exists() and list(m.delta(1)) == [] and m.committed(1) is None
    assert Changes(1, 0, 1) == Changes(entered=1, exited=0, size=1)
