"""Dependents go stale no more (issue 8 section 5): publishing a segment refreshes the live segments reading it."""

from __future__ import annotations

from tests.lifecycle.conftest import Lifecycle
from tests.lifecycle.test_segments import FR, UK

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
#: (none within CI's budget: readers on Spark are test_segments.py's in_segment case; this one took 31 s, passing)
SPARK_CASES: tuple[str, ...] = ()

READS_UK = {"audience": "contact", "groups": [{"where": {"in_segment": "UK contacts"}}]}
READS_READER = {"audience": "contact", "groups": [{"where": {"in_segment": "Reader"}}]}


def test_republishing_a_segment_refreshes_its_live_readers_in_dependency_order(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("r", READS_UK), "--name", "Reader")
    life.run("segment", "create", life.definition("rr", READS_READER), "--name", "A second reader")
    for name in ("UK contacts", "Reader", "A second reader"):
        life.run("segment", "publish", name)
    assert life.members("A second reader") == [1, 3, 5]
    life.run("segment", "edit", "UK contacts", life.definition("fr", FR))
    assert life.members("Reader") == [1, 3, 5]  # a draft changes nobody
    out = life.run("segment", "publish", "UK contacts", now="2026-10-01T13:00:00").stdout
    assert "Reader refreshed after it" in out and "A second reader refreshed after it" in out
    assert life.members("UK contacts") == [2, 6]
    assert life.members("Reader") == [2, 6]
    assert life.members("A second reader") == [2, 6]
    first = [r for r in life.json("segment", "history", "Reader") if r["trigger"] == "dependency"]
    second = [r for r in life.json("segment", "history", "A second reader") if r["trigger"] == "dependency"]
    assert len(first) == len(second) == 1 and first[0]["refresh"] < second[0]["refresh"]
    assert (first[0]["entered"], first[0]["exited"]) == (2, 3)


def test_a_reader_that_is_not_live_is_left_alone_and_a_snapshot_republish_refreshes_readers(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK), "--snapshot")
    life.run("segment", "create", life.definition("r", READS_UK), "--name", "Reader")
    life.run("segment", "create", life.definition("r", READS_UK), "--name", "Stopped reader")
    for name in ("UK contacts", "Reader", "Stopped reader"):
        life.run("segment", "publish", name)
    life.run("segment", "stop", "Stopped reader")
    life.load_contacts([(1, "ann@example.com", "UK", 0), (8, "eve@example.com", "UK", 0)])
    life.run("segment", "publish", "UK contacts", now="2026-10-01T13:00:00")
    assert life.members("Reader") == [1, 8]
    assert life.members("Stopped reader") == [1, 3, 5]
    assert [r["trigger"] for r in life.json("segment", "history", "Stopped reader")] == ["publish"]


def test_a_list_change_or_a_manual_refresh_carries_through_to_live_readers(life: Lifecycle) -> None:
    in_list = {"audience": "contact", "groups": [{"where": {"in_segment": "Fair"}}]}
    life.run("segment", "create", "--list", "--audience", "contact", "--name", "Fair")
    life.run("segment", "create", life.definition("f", in_list), "--name", "Fair reader")
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("r", READS_UK), "--name", "Reader")
    for name in ("Fair reader", "UK contacts", "Reader"):
        life.run("segment", "publish", name)
    assert "Fair reader refreshed after it: 2 members" in life.run("segment", "add", "Fair", "2", "3").stdout
    assert life.members("Fair reader") == [2, 3]
    life.run("segment", "remove", "Fair", "2")
    assert life.members("Fair reader") == [3]
    life.load_contacts([(1, "ann@example.com", "UK", 0)], now="2026-10-01T14:00:00")
    life.run("segment", "refresh", "UK contacts", now="2026-10-01T14:00:00")
    assert life.members("Reader") == [1]
    assert [r["trigger"] for r in life.json("segment", "history", "Reader")] == ["publish", "dependency"]
