"""POST /api/tables/{t}/lookup: what the builder shows beside the member sample, and what it never reveals.

A PII-restricted user may not send keys of a table whose key is PII (the answer would say which
guessed keys are records); a key asked twice is one row; "last ..." is the value of the latest
related record in time (on DuckDB and PostgreSQL alike), and a related table with no time column
says "max" instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from fastapi.testclient import TestClient

import segmenta
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.routers.model import latest_column, latest_related_query
from segmenta.interfaces.api.runtime import Service
from segmenta.model.schema import Model
from tests.api.conftest import PASSWORD, Api, shared_api, template  # noqa: F401  (fixtures)
from tests.engines.helpers import WorkspaceFactory

pytest_plugins = ["tests.engines.fixtures"]

PII_KEY_MODEL = {
    "tables": {
        "person": {"key": "email", "columns": {"email": {"type": "text", "pii": True}, "tier": {"type": "text"}}},
        "visit": {
            "key": "visitid",
            "columns": {"visitid": {"type": "integer"}, "email": {"type": "text"}, "page": {"type": "text"}},
        },
    },
    "relationships": [{"name": "person", "from": "visit.email", "to": "person.email", "reverse": "visits"}],
}


@pytest.fixture
def pii_key(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(PII_KEY_MODEL))
    (tmp_path / "person.csv").write_text("email,tier\nann@x.example,Gold\nbob@x.example,Silver\n")
    (tmp_path / "visit.csv").write_text("visitid,email,page\n1,ann@x.example,home\n")
    ws = segmenta.Workspace.init(tmp_path / "ws", model=tmp_path / "model.yaml")
    ws.load("person", tmp_path / "person.csv")
    ws.load("visit", tmp_path / "visit.csv")
    ws.close()
    service = Service(tmp_path / "ws")
    service.users.create_user("rita", password=PASSWORD, role="marketer", pii_restricted=True)
    service.users.create_user("mark", password=PASSWORD, role="marketer")
    auth = {u: {"Authorization": f"Bearer {service.users.create_token(u)}"} for u in ("rita", "mark")}
    with TestClient(create_app(service=service)) as c:
        yield c, auth


def test_a_restricted_user_may_not_look_up_records_by_a_pii_key(pii_key: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    c, auth = pii_key
    for fields in ([{"attribute": "tier"}], []):
        body = {"keys": ["ann@x.example", "nobody@x.example"], "fields": fields}
        refused = c.post("/api/tables/person/lookup", json=body, headers=auth["rita"])
        assert refused.status_code == 403, refused.text
        assert "person.email is PII" in refused.json()["error"]["message"]
        assert "Gold" not in refused.text and "ann@x.example" not in refused.text
    # Someone who may see PII looks the same records up.
    body = {"keys": ["ann@x.example", "nobody@x.example"], "fields": [{"attribute": "tier"}]}
    seen = c.post("/api/tables/person/lookup", json=body, headers=auth["mark"])
    assert seen.status_code == 200, seen.text
    assert [r["values"] for r in seen.json()["rows"]] == [["Gold"], [None]]
    # A table whose key is not PII is looked up as before, restricted or not.
    visits = c.post("/api/tables/visit/lookup", json={"keys": [1], "fields": [{"attribute": "page"}]}, headers=auth["rita"])
    assert visits.status_code == 200 and visits.json()["rows"] == [{"key": 1, "values": ["home"]}]


def test_a_key_asked_twice_is_one_row_in_the_order_first_asked(shared_api: Api) -> None:  # noqa: F811
    body = {"keys": [2, 1, 2, 9999, 1], "fields": [{"path": ["account"], "attribute": "industry"}, {"measure": "total_spend"}]}
    r = shared_api.call("marketer", "POST", "/api/tables/contact/lookup", json=body)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["key"] for row in rows] == [2, 1, 9999]
    assert all(len(row["values"]) == 2 for row in rows)
    assert rows[0]["values"][0] == "Tech" and rows[1]["values"][0] == "Retail"


def test_last_related_value_is_the_latest_in_time_not_the_greatest(shared_api: Api) -> None:  # noqa: F811
    # Contact 2's interactions: "email_click" at 2026-07-29, "Email_Click" at 2026-10-01 (the greatest text is the older).
    body = {"keys": [2], "fields": [{"related": "interactions", "attribute": "type"}]}
    r = shared_api.call("marketer", "POST", "/api/tables/contact/lookup", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["columns"] == ["last interaction type"]
    assert r.json()["rows"] == [{"key": 2, "values": ["Email_Click"]}]
    # registration has no date or datetime column: the greatest value, and the label says so.
    body = {"keys": [1], "fields": [{"related": "registrations", "attribute": "eventid"}]}
    r = shared_api.call("marketer", "POST", "/api/tables/contact/lookup", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["columns"] == ["max registration eventid"]
    bad = shared_api.call("marketer", "POST", "/api/tables/contact/lookup", json={"keys": [1], "fields": [{"related": "orders"}]})
    assert bad.status_code == 422 and bad.json()["error"]["problems"][0] == {
        "where": "/fields/0",
        "message": "give the attribute of the order records to look up",
    }


def test_the_time_column_is_a_named_one_then_the_first_datetime_never_pii() -> None:
    def table(columns: dict[str, Any]) -> Any:
        return Model.from_data({"tables": {"t": {"key": "id", "columns": {"id": {"type": "integer"}, **columns}}}}).table("t")

    assert latest_column(table({"a": {"type": "date"}, "b": {"type": "datetime"}, "c": {"type": "datetime"}})) == "b"
    assert latest_column(table({"b": {"type": "datetime"}, "modifiedon": {"type": "datetime"}})) == "modifiedon"
    assert latest_column(table({"a": {"type": "date"}, "n": {"type": "text"}})) == "a"
    assert latest_column(table({"seen": {"type": "datetime", "pii": True}, "n": {"type": "text"}})) is None
    assert latest_column(table({"n": {"type": "text"}})) is None


VISITS = Model.from_data(
    {
        "tables": {
            "visit": {
                "key": "visitid",
                "columns": {
                    "visitid": {"type": "integer"},
                    "who": {"type": "integer"},
                    "page": {"type": "text"},
                    "at": {"type": "datetime"},
                },
            }
        }
    }
)


def test_latest_related_query_runs_alike_on_every_engine(make_ws: WorkspaceFactory) -> None:
    import datetime as dt

    ws = make_ws(model=VISITS)
    day = dt.datetime(2026, 5, 1)
    rows = pa.table(
        {
            "visitid": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
            "who": pa.array([1, 1, 1, 2, 2, 3], pa.int64()),
            "page": ["zoo", "apple", "mid", "b", "a", "only"],
            "at": pa.array(
                [day, day + dt.timedelta(days=3), None, day, day, None],
                pa.timestamp("us"),
            ),
        }
    )
    ws.engine.replace_table("visit", VISITS.table("visit"), rows)
    got = ws.engine.run(latest_related_query("visit", "who", "page", "at", [1, 2, 3, 4])).to_pylist()
    # who 1: the latest is "apple" (a row without a time is never the latest); who 2: a tie in time, the greater value;
    # who 3: no time at all, still its one value; who 4: no rows.
    assert sorted((r["k"], r["v"]) for r in got) == [(1, "apple"), (2, "b"), (3, "only")]
    greatest = ws.engine.run(latest_related_query("visit", "who", "page", None, [1])).to_pylist()
    assert greatest == [{"k": 1, "v": "zoo"}]
