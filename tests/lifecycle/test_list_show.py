"""A static list shows its size and members right after an upload (issue 8 section 5), with no refresh."""

from __future__ import annotations

from tests.lifecycle.conftest import Lifecycle, write_csv

#: Every case runs on Spark, on both stores.
SPARK_CASES = None  # every case


def test_a_list_shows_its_size_and_members_right_after_an_import(life: Lifecycle) -> None:
    life.run("segment", "create", "--list", "--audience", "contact", "--name", "Fair visitors")
    upload = write_csv(life.tmp / "visitors.csv", ["Email"], [("ann@example.com",), ("shared@example.com",), ("x@y.z",)])
    got = life.json("segment", "import-csv", "Fair visitors", str(upload))
    assert got["members"] == 3  # ann, and both records sharing an address
    info = life.json("segment", "show", "Fair visitors")
    assert (info["status"], info["size"], info["has_draft"], info["waiting"]) == ("live", 3, False, None)
    assert [s["size"] for s in life.json("segment", "list")] == [3]
    assert life.members("Fair visitors") == [1, 5, 6]
