"""Membership events on Spark (issue 11 item 5 at small size): publish, refresh and list imports emit them.

Spark refuses record changes (``supports_record_changes`` is False, exit 2, nothing applied), so the
real-time property runs on DuckDB and PostgreSQL (tests/realtime/test_consistency.py); here the
log itself is checked on Spark's file store: replaying ``events tail --json`` gives each
segment's stored membership, offsets increase strictly, and a refresh with nothing to change
emits nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.lifecycle.conftest import CONTACTS, Lifecycle, write_csv
from tests.spark.test_spark_lifecycle import _life, templates  # noqa: F401 - the Spark template fixture

pytestmark = pytest.mark.spark

UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
UK_CLICKERS = {
    "audience": "contact",
    "groups": [
        {"where": {"in_segment": "uk"}},
        {
            "link": "and_also",
            "where": {"related": "interactions", "where": {"attribute": "type", "op": "eq", "value": "email_click"}},
        },
    ],
}


@pytest.fixture
def life(templates: dict[str, Path], tmp_path: Path) -> Lifecycle:  # noqa: F811 - the fixture imported above
    return _life(templates["spark"], tmp_path, "spark")


def tail(life: Lifecycle, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in life.run("events", "tail", "--json", *args).stdout.splitlines() if line.strip()]


def check_log(life: Lifecycle, names: list[str]) -> list[dict[str, Any]]:
    every = tail(life)
    offsets = [e["offset"] for e in every]
    assert offsets == sorted(set(offsets)), "offsets increase strictly"
    for name in names:
        members: set[Any] = set()
        for e in every:
            if e["segment"] == name:
                assert (e["key"] in members) == (e["change"] == "exited"), e  # each event a real transition
                (members.add if e["change"] == "entered" else members.discard)(e["key"])
        assert members == set(life.members(name)), name
    return every


def test_publish_and_refresh_events_replay_to_the_membership_on_spark(life: Lifecycle) -> None:
    for name, definition in (("uk", UK), ("uk-clickers", UK_CLICKERS)):
        life.run("segment", "create", life.definition(name, definition), "--name", name)
        life.run("segment", "publish", name)
    published = check_log(life, ["uk", "uk-clickers"])
    assert {(e["segment"], e["key"]) for e in published} == {
        ("uk", 1),
        ("uk", 3),
        ("uk", 5),
        ("uk-clickers", 1),
        ("uk-clickers", 3),
    }
    life.run("segment", "refresh", "uk")
    assert tail(life) == published  # nothing to change: no event
    rows = [(1, "ann@example.com", "FR", 0), *CONTACTS[1:], (7, "new@example.com", "UK", 0)]
    life.run("load", "contact", str(write_csv(life.tmp / "c.csv", ["contactid", "email", "country", "statecode"], rows)))
    life.run("segment", "refresh", "uk")
    life.run("segment", "refresh", "uk-clickers")
    after = check_log(life, ["uk", "uk-clickers"])
    new = [(e["segment"], e["key"], e["change"]) for e in after if e["offset"] > published[-1]["offset"]]
    assert sorted(new) == [("uk", 1, "exited"), ("uk", 7, "entered"), ("uk-clickers", 1, "exited")]
    assert tail(life, "--from", str(published[-1]["offset"])) == after[len(published) :]


def test_list_events_and_refused_record_changes_on_spark(life: Lifecycle) -> None:
    life.run("segment", "create", "--list", "--audience", "contact", "--name", "vip")
    emails = life.tmp / "vip.csv"
    emails.write_text("email\ncleo@example.com\nSHARED@example.com\n", encoding="utf-8")
    life.run("segment", "import-csv", "vip", str(emails))
    every = check_log(life, ["vip"])
    assert sorted(e["key"] for e in every) == [3, 5, 6]  # two records share the address: both join
    change = life.tmp / "c.ndjson"
    change.write_text(json.dumps({"contactid": 2, "country": "UK"}) + "\n", encoding="utf-8")
    refused = life.run("records", "upsert", "contact", str(change), code=2)
    assert "spark" in (refused.stdout + refused.stderr).lower()
    assert tail(life) == every
