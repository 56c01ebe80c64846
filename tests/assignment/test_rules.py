"""Assignment rules (issue 12 item 3): sellers from a model table, rules top-down, round robin and load
balancing, capacity, availability, the unassigned queue with its reasons, manual assignments."""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import segmenta
from segmenta.errors import RejectedInput
from segmenta.services import records
from segmenta.services.assignment import Assignments
from segmenta.services.assignment_rules import Rules, available, parse_hours
from segmenta.services.segments import Segments
from tests.assignment.conftest import MODEL, write_csv

SELLERS = [
    # sellerid, country, capacity, team, timezone, hours, off_from, off_until
    (1, "UK", 100, "north", "Europe/London", None, None, None),
    (2, "UK", 100, "north", "Europe/London", None, None, None),
    (3, "FR", 100, "south", "Europe/Paris", None, None, None),
]
SELLER_COLUMNS = ["sellerid", "country", "capacity", "team", "timezone", "hours", "off_from", "off_until"]
ALL = {"audience": "lead", "groups": [{"where": {"all": []}}]}


def model() -> dict[str, Any]:
    m = copy.deepcopy(MODEL)
    m["tables"]["lead"] = {
        "key": "leadid",
        "active": {"attribute": "statecode", "equals": 0},
        "columns": {
            "leadid": {"type": "integer"},
            "country": {"type": "text"},
            "createdon": {"type": "datetime"},
            "statecode": {"type": "integer"},
        },
    }
    m["tables"]["seller"] = {
        "key": "sellerid",
        "columns": {
            "sellerid": {"type": "integer"},
            "country": {"type": "text"},
            "capacity": {"type": "integer"},
            "team": {"type": "text"},
            "timezone": {"type": "text"},
            "hours": {"type": "text"},
            "off_from": {"type": "datetime"},
            "off_until": {"type": "datetime"},
        },
    }
    return m


class Desk:
    """A workspace with leads and sellers, driven through the services."""

    def __init__(self, segs: Segments, tmp: Path) -> None:
        self.segs, self.tmp = segs, tmp
        self.wa = Assignments(segs)
        self.rules = Rules(self.wa)

    def change(self, table: str, rows: list[dict[str, Any]]) -> None:
        p = self.tmp / f"{uuid.uuid4().hex[:8]}.ndjson"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
        records.upsert(self.segs, table, p)

    def leads(self, start: int, n: int, country: str = "UK", created: str = "2026-10-01T11:00:00") -> list[int]:
        keys = list(range(start, start + n))
        self.change("lead", [{"leadid": k, "country": country, "createdon": created, "statecode": 0} for k in keys])
        return keys

    def seller_of(self, key: int) -> Any:
        return self.rules.of_record("lead", key)

    def segment(self, name: str = "all", rules: list[dict[str, Any]] | None = None) -> None:
        self.wa.create(ALL, name=name)
        for r in rules or []:
            self.rules.add(name, r)
            self.rules.set_active(name, r["name"], True)
        self.wa.activate(name)


@pytest.fixture()
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("SEGMENTA_NOW", "2026-10-01T12:00:00")  # a Thursday
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model()))
    ws = segmenta.Workspace.init(tmp_path / "ws", model=path)
    ws.load("seller", write_csv(tmp_path / "s.csv", SELLER_COLUMNS, SELLERS))
    ws.close()
    with Segments.open(tmp_path / "ws") as segs:
        yield Desk(segs, tmp_path)


RR = {"name": "rr", "pool": {"table": "seller", "teams": ["north", "south"]}, "distribution": "round_robin"}


def test_round_robin_gives_each_seller_n_plus_or_minus_one(desk: Desk) -> None:
    desk.segment(rules=[RR])
    keys = desk.leads(1, 31)
    got = Counter(desk.seller_of(k)["seller"] for k in keys)
    assert set(got) == {"1", "2", "3"} and max(got.values()) - min(got.values()) <= 1
    more = desk.leads(100, 5)  # a later change carries on from who waited longest
    got.update(desk.seller_of(k)["seller"] for k in more)
    assert max(got.values()) - min(got.values()) <= 1


def test_rules_go_top_down_first_match_wins_and_no_rule_queues(desk: Desk) -> None:
    fr = {"name": "fr", "where": {"attribute": "country", "op": "eq", "value": "FR"}, "pool": {"table": "seller", "sellers": [3]}}
    uk = {"name": "uk", "where": {"attribute": "country", "op": "eq", "value": "UK"}, "pool": {"table": "seller", "sellers": [1]}}
    desk.segment(rules=[fr, uk])
    desk.leads(1, 1, "FR")
    desk.leads(2, 1, "UK")
    desk.leads(3, 1, "DE")
    assert (desk.seller_of(1)["seller"], desk.seller_of(2)["seller"]) == ("3", "1")
    assert desk.seller_of(1)["detail"]["rule"] == "fr" and "why" in desk.seller_of(1)["detail"]
    assert [(q["key"], q["reason"]) for q in desk.rules.queue("lead")] == [("3", "no_rule")]


def test_dynamic_match_and_an_empty_pool(desk: Desk) -> None:
    same = {"name": "same", "pool": {"table": "seller", "match": [{"seller": "country", "record": "country"}]}}
    desk.segment(rules=[same])
    desk.leads(1, 2, "FR")
    desk.leads(3, 1, "DE")
    assert {desk.seller_of(k)["seller"] for k in (1, 2)} == {"3"}
    assert desk.rules.queue("lead")[0]["reason"] == "pool_empty"


def test_load_balancing_respects_capacity_and_the_queue_is_retried_when_capacity_changes(desk: Desk) -> None:
    desk.change("seller", [{"sellerid": 1, "capacity": 2}, {"sellerid": 2, "capacity": 1}, {"sellerid": 3, "capacity": 0}])
    lb = {"name": "lb", "pool": {"table": "seller", "teams": ["north", "south"]}, "distribution": "load_balancing"}
    desk.segment(rules=[lb])
    keys = desk.leads(1, 5)
    sellers = Counter(desk.seller_of(k)["seller"] for k in keys)
    assert sellers == Counter({"1": 2, "2": 1, None: 2})  # 3 has capacity 0: skipped; nobody over capacity
    assert [q["reason"] for q in desk.rules.queue("lead")] == ["at_capacity", "at_capacity"]
    desk.change("seller", [{"sellerid": 3, "capacity": 5}])  # a change of capacity retries the queue
    assert desk.rules.queue("lead") == [] and desk.rules.seller("seller", "3")["load"] == 2


def test_manual_assignments_count_toward_capacity(desk: Desk) -> None:
    desk.change("seller", [{"sellerid": 1, "capacity": 1}, {"sellerid": 2, "capacity": 0}, {"sellerid": 3, "capacity": 0}])
    desk.segment(rules=[RR])
    desk.wa.create({"audience": "lead", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "XX"}}]}, name="x")
    desk.leads(1, 1)
    assert desk.seller_of(1)["seller"] == "1"
    desk.rules.manual("lead", "1", "2")  # moved by hand to seller 2: seller 1 is free again
    assert desk.rules.seller("seller", "2")["load"] == 1 and desk.rules.seller("seller", "1")["load"] == 0
    desk.leads(2, 2)
    assert desk.seller_of(2)["seller"] == "1" and desk.seller_of(3)["reason"] == "at_capacity"


def test_availability_skips_sellers_off_now_and_overdue_is_marked(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    desk.change(
        "seller",
        [
            {"sellerid": 1, "hours": "mon-fri 09:00-17:00"},  # London: 13:00 local, working
            {"sellerid": 2, "off_from": "2026-09-30T00:00:00", "off_until": "2026-10-05T00:00:00"},  # time off
            {"sellerid": 3, "timezone": "Asia/Tokyo", "hours": "mon-fri 09:00-17:00"},  # 21:00 local, off
        ],
    )
    rule = {**RR, "consider_availability": True, "created_within_hours": 24}
    desk.segment(rules=[rule])
    desk.leads(1, 3, created="2026-10-01T11:00:00")
    desk.leads(4, 1, created="2026-09-20T00:00:00")
    assert {desk.seller_of(k)["seller"] for k in (1, 2, 3, 4)} == {"1"}
    assert desk.seller_of(4)["overdue"] and not desk.seller_of(1)["overdue"]
    monkeypatch.setenv("SEGMENTA_NOW", "2026-10-03T12:00:00")  # a Saturday: nobody works
    desk.leads(5, 1)
    assert desk.seller_of(5)["reason"] == "unavailable"


def test_hours_and_availability_by_hand() -> None:
    assert parse_hours("mon-wed 09:00-17:00; sat 10:00-12:00")[-1][0] == 5
    with pytest.raises(RejectedInput):
        parse_hours("weekdays 9-5")
    seller = {"hours": "thu 09:00-10:00", "timezone": "America/New_York"}
    import datetime as dt

    assert available(seller, dt.datetime(2026, 10, 1, 13, 30))  # 09:30 in New York
    assert not available(seller, dt.datetime(2026, 10, 1, 15, 0))


def test_rule_limits(desk: Desk) -> None:
    desk.wa.create(ALL, name="all")
    for i in range(11):
        desk.rules.add("all", {**RR, "name": f"r{i}"})
    for i in range(10):
        desk.rules.set_active("all", f"r{i}", True)
    with pytest.raises(RejectedInput, match="at most 10 rules"):
        desk.rules.set_active("all", "r10", True)
    eleven = {"all": [{"attribute": "country", "op": "ne", "value": str(i)} for i in range(11)]}
    with pytest.raises(RejectedInput, match="at most 10 conditions"):
        desk.rules.add("all", {**RR, "name": "big", "where": eleven})
    six = {"all": [{"attribute": "country", "op": "ne", "value": str(i)} for i in range(6)]}
    with pytest.raises(RejectedInput, match="at most 5"):
        desk.rules.add("all", {"name": "pool", "pool": {"table": "seller", "where": six}})
    with pytest.raises(RejectedInput):
        desk.rules.add("all", {"name": "both", "pool": {"table": "seller", "sellers": [1], "teams": ["north"]}})
    assert len(desk.rules.list_rules("all")) == 11
