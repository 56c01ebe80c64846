"""A publish or refresh that fails does so before the membership is committed: nothing changes,
and ``show`` agrees with ``members`` (issue 9 item 5, no kill needed)."""

from __future__ import annotations

from tests.lifecycle.conftest import Lifecycle
from tests.lifecycle.test_segments import UK

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
SPARK_CASES = ("test_a_publish_whose_next_refresh_cannot_be_scheduled_changes_no_membership",)
#: ... and of those, these also with the store on PostgreSQL.
SPARK_ON_PG_STORE: tuple[str, ...] = ()

#: So close to the calendar's end that the next refresh (``at`` + cadence) cannot be scheduled.
LAST_DAYS = "9999-12-30T00:00:00"


def test_a_publish_whose_next_refresh_cannot_be_scheduled_changes_no_membership(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "configure", "UK contacts", "--refresh-minutes", "10080")
    r = life.run("segment", "publish", "UK contacts", code=2, now=LAST_DAYS)
    assert "refresh_minutes" in r.stderr and "9999-12-31" in r.stderr
    info = life.json("segment", "show", "UK contacts", now=LAST_DAYS)
    assert info["status"] == "error" and "refresh_minutes" in info["status_reason"]
    assert info["size"] == len(life.members("UK contacts", now=LAST_DAYS)) == 0
    runs = life.json("segment", "history", "UK contacts", now=LAST_DAYS)
    assert [(r["trigger"], r["status"]) for r in runs] == [("publish", "error")]
    assert "refresh_minutes" in runs[0]["message"]
    # fixed, it publishes as usual
    life.run("segment", "configure", "UK contacts", "--refresh-minutes", "60")
    life.run("segment", "publish", "UK contacts", now=LAST_DAYS)
    info = life.json("segment", "show", "UK contacts", now=LAST_DAYS)
    assert (info["status"], info["size"]) == ("live", 3)
    assert life.members("UK contacts", now=LAST_DAYS) == [1, 3, 5]


def test_a_refresh_that_cannot_schedule_its_next_one_keeps_the_previous_membership(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.load_contacts([(1, "ann@example.com", "FR", 0), (3, "cleo@example.com", "UK", 0)])
    life.run("segment", "configure", "UK contacts", "--refresh-minutes", "10080")
    life.run("segment", "refresh", "UK contacts", code=2, now=LAST_DAYS)
    info = life.json("segment", "show", "UK contacts", now=LAST_DAYS)
    assert info["size"] == len(life.members("UK contacts", now=LAST_DAYS)) == 3
    assert [r["status"] for r in life.json("segment", "history", "UK contacts", now=LAST_DAYS)] == ["done", "error"]
