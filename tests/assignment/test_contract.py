"""``segmenta assignment ...`` exactly as contract section 6 says, through the CLI (store on SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from tests.assignment.conftest import CLICKERS, HIGH, TECH, UK, Crm


def names(rows: list[dict]) -> list[str]:
    return [r["name"] for r in rows]


def test_a_table_lists_its_segments_in_position_order_with_default_last(crm: Crm) -> None:
    assert crm.listing() == [{"name": "default", "priority": 1, "status": "active", "size": 5, "no_move": False}]
    crm.create("uk", UK)
    crm.create("clickers", CLICKERS)
    rows = crm.listing()
    assert [(r["name"], r["priority"], r["status"]) for r in rows] == [
        ("uk", 1, "draft"),
        ("clickers", 2, "draft"),
        ("default", 3, "active"),
    ]
    assert [r["size"] for r in rows] == [0, 0, 5]  # drafts route nothing: every active record is in default
    assert set(rows[0]) >= {"name", "priority", "status", "size"}


def test_create_takes_the_priority_of_the_last_one_created_and_priority_n_inserts(crm: Crm) -> None:
    crm.create("a", UK)
    crm.create("b", CLICKERS, "--priority", "1")  # b, a
    crm.create("c", TECH)  # after b, the last one created: b, c, a
    assert names(crm.listing()) == ["b", "c", "a", "default"]
    crm.run("assignment", "priority", "a", "1")
    assert [(r["name"], r["priority"]) for r in crm.listing()] == [("a", 1), ("b", 2), ("c", 3), ("default", 4)]
    crm.run("assignment", "priority", "a", "3")
    assert names(crm.listing()) == ["b", "c", "a", "default"]


def test_bad_priorities_names_and_tables_are_refused_with_exit_2_and_change_nothing(crm: Crm) -> None:
    crm.create("a", UK)
    before = crm.listing()
    for args in (("priority", "a", "0"), ("priority", "a", "2"), ("priority", "default", "1"), ("priority", "nope", "1")):
        r = crm.run("assignment", *args, code=2)
        assert r.stderr.strip()
    crm.create("b", UK, "--priority", "3", code=2)
    crm.create("a", CLICKERS, code=2)  # the name is taken
    crm.create("default", CLICKERS, code=2)
    r = crm.run("assignment", "list", "contcat", code=2)
    assert "contact" in r.stderr  # names the right one
    crm.run("assignment", "show", "contact", "x1", code=2)  # an integer key
    assert crm.listing() == before


def test_an_active_record_is_in_the_first_active_matching_segment_else_default(crm: Crm) -> None:
    crm.create("uk", UK)
    crm.create("clickers", CLICKERS)
    crm.run("assignment", "activate", "clickers")
    assert crm.segments() == {1: "clickers", 2: "default", 3: "default", 4: None, 5: "default", 6: "clickers"}
    crm.run("assignment", "activate", "uk")  # uk is first: contact 1 (UK and a clicker) moves there
    assert crm.segments() == {1: "uk", 2: "default", 3: "uk", 4: None, 5: "default", 6: "clickers"}
    assert {r["name"]: r["size"] for r in crm.listing()} == {"uk": 2, "clickers": 1, "default": 2}
    crm.run("assignment", "deactivate", "uk")
    assert crm.segments() == {1: "clickers", 2: "default", 3: "default", 4: None, 5: "default", 6: "clickers"}
    assert [r["status"] for r in crm.listing()] == ["inactive", "active", "active"]


def test_show_prints_the_segment_or_null(crm: Crm) -> None:
    crm.create("uk", UK)
    crm.run("assignment", "activate", "uk")
    info = crm.json("assignment", "show", "contact", "3")
    assert info["segment"] == "uk" and info["key"] == 3
    assert crm.json("assignment", "show", "contact", "4")["segment"] is None  # inactive
    assert crm.json("assignment", "show", "contact", "99")["segment"] is None  # no such record


def test_a_priority_change_routes_nothing_until_records_change(crm: Crm) -> None:
    crm.create("clickers", CLICKERS)
    crm.create("uk", UK)
    crm.run("assignment", "activate", "clickers")
    crm.run("assignment", "activate", "uk")
    assert crm.segment_of(1) == "clickers"
    crm.run("assignment", "priority", "uk", "1")
    assert crm.segment_of(1) == "clickers"  # nothing routed by the change itself
    crm.upsert("contact", [{"contactid": 1, "score": 51}])  # an update routes it under the new order
    assert crm.segment_of(1) == "uk"


def test_rerun_applies_the_order_in_force_and_reports_what_moved(crm: Crm) -> None:
    crm.create("clickers", CLICKERS)
    crm.create("uk", UK)
    crm.run("assignment", "activate", "clickers")
    crm.run("assignment", "activate", "uk")
    crm.run("assignment", "priority", "uk", "1")
    report = crm.json("assignment", "rerun", "contact")
    assert report["moved"] == 1 and crm.segment_of(1) == "uk"


def test_records_are_routed_when_created_and_again_when_updated(crm: Crm) -> None:
    crm.create("uk", UK)
    crm.run("assignment", "activate", "uk")
    crm.upsert("contact", [{"contactid": 7, "country": "UK", "statecode": 0}, {"contactid": 8, "country": "FR", "statecode": 0}])
    assert crm.segments([7, 8]) == {7: "uk", 8: "default"}
    crm.upsert("contact", [{"contactid": 7, "country": "FR"}, {"contactid": 8, "country": "UK"}])
    assert crm.segments([7, 8]) == {7: "default", 8: "uk"}


def test_inactive_and_deleted_records_belong_to_none_and_come_back_when_active(crm: Crm) -> None:
    crm.create("uk", UK)
    crm.run("assignment", "activate", "uk")
    crm.upsert("contact", [{"contactid": 3, "statecode": 1}])
    assert crm.segment_of(3) is None
    crm.upsert("contact", [{"contactid": 3, "statecode": 0}])
    assert crm.segment_of(3) == "uk"
    crm.upsert("contact", [{"contactid": 3}], delete=True)
    assert crm.segment_of(3) is None
    assert {r["name"]: r["size"] for r in crm.listing()} == {"uk": 1, "default": 3}


def test_no_move_keeps_a_record_on_update_but_default_always_lets_move(crm: Crm) -> None:
    crm.create("uk", UK, "--no-move")
    crm.run("assignment", "activate", "uk")
    crm.upsert("contact", [{"contactid": 1, "country": "FR"}])
    assert crm.segment_of(1) == "uk"  # kept although it no longer matches
    crm.upsert("contact", [{"contactid": 2, "country": "UK"}])
    assert crm.segment_of(2) == "uk"  # default let it move in
    crm.create("clickers", CLICKERS, "--priority", "1")
    crm.run("assignment", "activate", "clickers")  # activation moves only what its segment lets move
    assert crm.segment_of(1) == "uk" and crm.segment_of(6) == "clickers"


def test_a_related_record_change_routes_the_records_that_read_it(crm: Crm) -> None:
    crm.create("tech", TECH)
    crm.create("clickers", CLICKERS)
    crm.run("assignment", "activate", "tech")
    crm.run("assignment", "activate", "clickers")
    assert crm.segments([2, 3, 5]) == {2: "default", 3: "default", 5: "default"}
    crm.upsert("interaction", [{"interactionid": 9, "contactid": 5, "type": "click"}])  # one-to-many, down
    assert crm.segment_of(5) == "clickers"
    crm.upsert("account", [{"accountid": 20, "industry": "Tech"}])  # many-to-one, through the path
    assert crm.segments([2, 3]) == {2: "tech", 3: "tech"}
    crm.upsert("interaction", [{"interactionid": 9}], delete=True)
    assert crm.segment_of(5) == "default"


def test_simulate_prints_the_keys_activation_would_route_and_changes_nothing(crm: Crm) -> None:
    crm.create("uk", UK)
    crm.create("high", HIGH)
    crm.run("assignment", "activate", "uk")
    before = (crm.listing(), crm.segments(), crm.json("assignment", "history", "contact"))
    result = json.loads(crm.run("assignment", "simulate", "high", "--json").stdout)
    assert result == {"keys": [6], "count": 1}  # 3 is UK (higher); 4 is inactive
    assert (crm.listing(), crm.segments(), crm.json("assignment", "history", "contact")) == before
    crm.run("assignment", "activate", "high")
    assert [k for k, s in crm.segments().items() if s == "high"] == result["keys"]


def test_history_keeps_who_moved_where_when_and_why(crm: Crm) -> None:
    crm.create("uk", UK)
    crm.run("assignment", "activate", "uk", now="2026-10-02T09:00:00")
    crm.upsert("contact", [{"contactid": 1, "country": "FR"}])
    rows = crm.json("assignment", "history", "contact", "--record", "1")
    assert [(r["from"], r["to"], r["reason"]) for r in rows] == [
        ("uk", "default", "updated"),
        (None, "uk", "activate"),
    ]
    assert rows[1]["at"] == "2026-10-02T09:00:00"
    crm.run("records", "upsert", "contact", str(crm.tmp / "none.ndjson"), code=2)  # a bad change routes nothing
    assert len(crm.json("assignment", "history", "contact", "--record", "1")) == 2
