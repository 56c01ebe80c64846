"""The worker: refresh cadence, dependency order and expiry, with the clock moved by SEGMENTA_NOW."""

from __future__ import annotations

from tests.lifecycle.conftest import Lifecycle
from tests.lifecycle.test_segments import CLICKED, UK

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
SPARK_CASES = (
    "test_an_unused_dynamic_segment_is_refreshed_every_24_hours",
    "test_readers_refresh_after_the_segments_they_read",
)
#: ... and of those, these also with the store on PostgreSQL.
SPARK_ON_PG_STORE: tuple[str, ...] = ()


def _worker_runs(life: Lifecycle, name: str, now: str) -> list[str]:
    return [r["at"] for r in life.json("segment", "history", name, now=now) if r["trigger"] == "worker"]


def test_an_unused_dynamic_segment_is_refreshed_every_24_hours(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("worker", "--once", now="2026-10-02T11:59:00")
    assert _worker_runs(life, "UK contacts", "2026-10-02T11:59:00") == []
    life.run("worker", "--once", now="2026-10-02T12:00:00")
    assert _worker_runs(life, "UK contacts", "2026-10-02T12:00:00") == ["2026-10-02T12:00:00"]
    assert life.json("segment", "show", "UK contacts")["next_refresh_at"] == "2026-10-03T12:00:00"


def test_in_use_by_a_live_journey_30_minutes_or_60_when_reading_interactions(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked")
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "publish", "Clicked")
    for name in ("UK contacts", "Clicked"):
        life.run("segment", "use", name, "--kind", "journey", "--user", "Welcome", "--role", "entry")
    life.run("worker", "--once", now="2026-10-01T12:30:00")
    assert _worker_runs(life, "UK contacts", "2026-10-01T12:30:00") == ["2026-10-01T12:30:00"]
    assert _worker_runs(life, "Clicked", "2026-10-01T12:30:00") == []
    life.run("worker", "--once", now="2026-10-01T13:00:00")
    assert _worker_runs(life, "Clicked", "2026-10-01T13:00:00") == ["2026-10-01T13:00:00"]
    assert _worker_runs(life, "UK contacts", "2026-10-01T13:00:00") == ["2026-10-01T12:30:00", "2026-10-01T13:00:00"]


def test_interaction_tables_and_cadence_are_configurable(life: Lifecycle) -> None:
    cfg = life.ws / "segmenta.yaml"
    cfg.write_text(cfg.read_text() + "segments:\n  interaction_tables: [account]\n  refresh: {in_use_minutes: 10}\n")
    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked")
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "Clicked")
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "use", "Clicked", "--kind", "journey", "--user", "J")
    assert life.json("segment", "show", "Clicked")["next_refresh_at"] == "2026-10-01T12:10:00"
    life.run("segment", "configure", "UK contacts", "--refresh-minutes", "90")
    assert life.json("segment", "show", "UK contacts")["next_refresh_at"] == "2026-10-01T13:30:00"


def test_readers_refresh_after_the_segments_they_read(life: Lifecycle) -> None:
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "Z base"}}]}
    life.run("segment", "create", life.definition("uk", UK), "--name", "Z base")
    life.run("segment", "create", life.definition("r", reader), "--name", "A reader")
    life.run("segment", "publish", "Z base")
    life.run("segment", "publish", "A reader")
    life.load_contacts([(1, "ann@example.com", "UK", 0), (9, "new@example.com", "UK", 0)])
    life.run("worker", "--once", now="2026-10-02T12:00:00")
    base = [r for r in life.json("segment", "history", "Z base") if r["trigger"] == "worker"]
    read = [r for r in life.json("segment", "history", "A reader") if r["trigger"] == "worker"]
    assert base[0]["refresh"] < read[0]["refresh"]
    assert life.members("A reader") == [1, 9]  # saw the base's new membership


def test_unused_segments_expire_and_come_back_through_draft(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("worker", "--once", now="2026-10-31T11:59:00")
    assert life.json("segment", "show", "UK contacts")["status"] == "live"
    out = life.run("worker", "--once", now="2026-10-31T12:00:00").stdout
    assert "expired UK contacts" in out
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["size"]) == ("expired", 3)
    assert life.members("UK contacts") == [1, 3, 5]  # no data lost
    life.run("segment", "refresh", "UK contacts", code=2)
    life.run("segment", "edit", "UK contacts", life.definition("uk", UK), code=2)
    r = life.run("segment", "activate", "UK contacts", "--status-reason", "ready", code=2)
    assert "draft first" in r.stderr
    life.run("segment", "activate", "UK contacts", "--status-reason", "draft")
    assert life.json("segment", "show", "UK contacts")["status"] == "draft"
    life.run("segment", "activate", "UK contacts", "--status-reason", "ready", now="2026-11-01T00:00:00")
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["status_reason"], info["last_refresh_at"]) == ("live", "ready", "2026-11-01T00:00:00")


def test_expired_segments_do_not_count_against_limits(life: Lifecycle) -> None:
    cfg = life.ws / "segmenta.yaml"
    cfg.write_text(cfg.read_text() + "segments:\n  limits: {dynamic: 1}\n  expiry_days: 2\n")
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked", code=2)
    life.run("worker", "--once", now="2026-10-03T12:00:00")
    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked")
    r = life.run("segment", "activate", "UK contacts", "--status-reason", "draft", code=2)
    assert "at most 1" in r.stderr


def test_use_and_live_readers_keep_a_segment_from_expiring(life: Lifecycle) -> None:
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "UK contacts"}}]}
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked")
    life.run("segment", "create", life.definition("r", reader), "--name", "Reader")
    for n in ("UK contacts", "Clicked", "Reader"):
        life.run("segment", "publish", n)
    life.run("segment", "use", "Reader", "--kind", "journey", "--user", "J")
    life.run("worker", "--once", now="2026-12-01T00:00:00")
    status = {s["name"]: s["status"] for s in life.json("segment", "list")}
    assert status == {"UK contacts": "live", "Reader": "live", "Clicked": "expired"}
    life.run("segment", "unuse", "Reader", "--kind", "journey", "--user", "J", now="2026-12-01T00:00:00")
    life.run("worker", "--once", now="2026-12-31T00:00:00")
    status = {s["name"]: s["status"] for s in life.json("segment", "list")}
    assert status == {"UK contacts": "live", "Reader": "expired", "Clicked": "expired"}


def test_a_reader_on_a_slower_cadence_follows_the_segment_it_reads(life: Lifecycle) -> None:
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "Z base"}}]}
    life.run("segment", "create", life.definition("uk", UK), "--name", "Z base")
    life.run("segment", "create", life.definition("r", reader), "--name", "A reader")
    life.run("segment", "publish", "Z base")
    life.run("segment", "publish", "A reader")
    life.run("segment", "configure", "Z base", "--refresh-minutes", "60")
    life.load_contacts([(1, "ann@example.com", "UK", 0), (9, "new@example.com", "UK", 0)], now="2026-10-01T12:30:00")
    out = life.run("worker", "--once", now="2026-10-01T13:00:00").stdout
    assert "refreshed Z base" in out and "refreshed A reader" in out
    assert life.members("A reader") == [1, 9]
    runs = [(r["trigger"], r["at"]) for r in life.json("segment", "history", "A reader")]
    assert runs == [("publish", "2026-10-01T12:00:00"), ("dependency", "2026-10-01T13:00:00")]
    assert life.json("segment", "show", "A reader")["next_refresh_at"] == "2026-10-02T13:00:00"
    out = life.run("worker", "--once", now="2026-10-01T14:00:00").stdout  # the base changed nothing: the reader waits
    assert "refreshed Z base" in out and "A reader" not in out
