"""Saved segments through the CLI (contract 5.1), on SQLite and on PostgreSQL."""

from __future__ import annotations

from tests.lifecycle.conftest import CONTACTS, Lifecycle

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
SPARK_CASES = (
    "test_refresh_records_who_entered_and_exited",
    "test_in_segment_reads_live_segments_only",
)
#: ... and of those, these also with the store on PostgreSQL.
SPARK_ON_PG_STORE = ("test_refresh_records_who_entered_and_exited",)

UK = {"name": "UK contacts", "audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}
FR = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "FR"}}]}
CLICKED = {
    "audience": "contact",
    "groups": [{"where": {"related": "interactions", "where": {"attribute": "type", "op": "eq", "value": "email_click"}}}],
}


def test_create_is_a_draft_and_publish_makes_it_live_with_members(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    info = life.json("segment", "show", "UK contacts")
    assert {k: info[k] for k in ("name", "status", "status_reason", "kind", "version", "size")} == {
        "name": "UK contacts",
        "status": "draft",
        "status_reason": "draft",
        "kind": "dynamic",
        "version": 1,
        "size": 0,
    }
    life.run("segment", "publish", "UK contacts")
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["size"]) == ("live", 3)
    assert life.members("UK contacts") == [1, 3, 5]
    out = life.run("segment", "members", "UK contacts").stdout
    assert out.strip().splitlines()[-1] == "3 members"
    assert [s["name"] for s in life.json("segment", "list")] == ["UK contacts"]


def test_a_name_is_needed_and_unique(life: Lifecycle) -> None:
    r = life.run("segment", "create", life.definition("fr", FR), code=2)
    assert "--name" in r.stderr
    life.run("segment", "create", life.definition("fr", FR), "--name", "France")
    r = life.run("segment", "create", life.definition("fr", FR), "--name", "France", code=2)
    assert "already exists" in r.stderr
    assert [s["name"] for s in life.json("segment", "list")] == ["France"]


def test_a_bad_definition_is_rejected_and_nothing_saved(life: Lifecycle) -> None:
    bad = {"audience": "contact", "groups": [{"where": {"attribute": "contry", "op": "eq", "value": "UK"}}]}
    r = life.run("segment", "create", life.definition("bad", bad), "--name", "Bad", code=2)
    assert "/groups/0/where" in r.stderr and "country" in r.stderr
    assert life.json("segment", "list") == []


def test_edits_are_versions_and_a_live_segment_keeps_its_members_until_publish(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "edit", "UK contacts", life.definition("fr", FR))
    info = life.json("segment", "show", "UK contacts")
    assert (info["version"], info["live_version"], info["draft_version"], info["status"], info["size"]) == (2, 1, 2, "live", 3)
    assert life.members("UK contacts") == [1, 3, 5]
    assert [r["trigger"] for r in life.json("segment", "history", "UK contacts")] == ["publish"]
    versions = life.json("segment", "versions", "UK contacts")
    assert [(v["version"], v["live"], v["draft"]) for v in versions] == [(1, True, False), (2, False, True)]
    assert versions[0]["definition"]["groups"][0]["where"]["value"] == "UK"
    old = life.json("segment", "show", "UK contacts", "--version", "1")
    assert old["definition"]["groups"][0]["where"]["value"] == "UK"
    life.run("segment", "publish", "UK contacts")
    info = life.json("segment", "show", "UK contacts")
    assert (info["version"], info["live_version"], info["draft_version"], info["size"]) == (2, 2, None, 2)
    assert life.members("UK contacts") == [2, 6]


def test_audience_is_fixed_at_creation(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    accounts = {"audience": "account", "groups": [{"where": {"all": []}}]}
    r = life.run("segment", "edit", "UK contacts", life.definition("acc", accounts), code=2)
    assert "audience" in r.stderr
    assert life.json("segment", "show", "UK contacts")["version"] == 1


def test_a_draft_edit_does_not_evaluate(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "edit", "UK contacts", life.definition("fr", FR))
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["version"], info["size"]) == ("draft", 2, 0)
    assert life.json("segment", "history", "UK contacts") == []


def test_snapshot_is_fixed_until_published_again(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK), "--snapshot")
    assert life.json("segment", "show", "UK contacts")["kind"] == "static"
    life.run("segment", "publish", "UK contacts")
    assert life.members("UK contacts") == [1, 3, 5]
    life.load_contacts([*CONTACTS, (7, "new@example.com", "UK", 0)])
    r = life.run("segment", "refresh", "UK contacts")
    assert "nothing changed" in r.stdout
    assert life.members("UK contacts") == [1, 3, 5]
    life.run("segment", "publish", "UK contacts")
    assert life.members("UK contacts") == [1, 3, 5, 7]


def test_refresh_records_who_entered_and_exited(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    moved = [(1, "ann@example.com", "FR", 0), *CONTACTS[1:], (7, "new@example.com", "UK", 0)]
    life.load_contacts(moved, now="2026-10-02T12:00:00")
    life.run("segment", "refresh", "UK contacts", now="2026-10-02T12:00:00")
    assert life.members("UK contacts") == [3, 5, 7]
    runs = life.json("segment", "history", "UK contacts")
    assert [(r["trigger"], r["size"], r["entered"], r["exited"], r["version"]) for r in runs] == [
        ("publish", 3, 3, 0, 1),
        ("refresh", 3, 1, 1, 1),
    ]
    assert [r["at"] for r in runs] == ["2026-10-01T12:00:00", "2026-10-02T12:00:00"]
    ann = life.json("segment", "history", "UK contacts", "--record", "1")
    assert [(h["change"], h["at"]) for h in ann] == [("entered", "2026-10-01T12:00:00"), ("exited", "2026-10-02T12:00:00")]
    assert life.json("segment", "history", "UK contacts", "--record", "2") == []


def test_in_segment_reads_live_segments_only(life: Lifecycle) -> None:
    reader = {
        "audience": "contact",
        "groups": [{"where": {"in_segment": "UK contacts"}}, {"link": "and_also", "where": {"in_segment": "Clicked"}}],
    }
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked")
    life.run("segment", "create", life.definition("reader", reader), "--name", "UK clickers")
    life.run("segment", "publish", "UK contacts")
    r = life.run("segment", "publish", "UK clickers", code=2)
    assert "Clicked" in r.stderr and "draft" in r.stderr
    assert life.json("segment", "show", "UK clickers")["status"] == "draft"
    life.run("segment", "publish", "Clicked")
    life.run("segment", "publish", "UK clickers")
    assert life.members("UK clickers") == [1, 3]
    # a plain evaluation reads the stored membership too
    out = life.run("segment", "evaluate", life.definition("reader", reader)).stdout
    assert out.strip().splitlines()[-1] == "2 members"


def test_in_segment_of_another_audience_is_rejected(life: Lifecycle) -> None:
    life.run("segment", "create", "--list", "--audience", "account", "--name", "Accounts")
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "Accounts"}}]}
    r = life.run("segment", "evaluate", life.definition("r", reader), code=2)
    assert "Accounts" in r.stderr and "account" in r.stderr


def test_cycles_are_refused_at_save(life: Lifecycle) -> None:
    a = {"audience": "contact", "groups": [{"where": {"in_segment": "B"}}]}
    b = {"audience": "contact", "groups": [{"where": {"in_segment": "A"}}]}
    life.run("segment", "create", life.definition("a", a), "--name", "A")
    r = life.run("segment", "create", life.definition("b", b), "--name", "B", code=2)
    assert "cycle" in r.stderr
    life.run("segment", "create", life.definition("uk", UK), "--name", "B")
    r = life.run("segment", "edit", "B", life.definition("b", b), code=2)
    assert "A -> B" in r.stderr or "B -> A" in r.stderr
    assert life.json("segment", "show", "B")["version"] == 1


def test_stop_is_refused_while_others_depend_and_lists_them(life: Lifecycle) -> None:
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "UK contacts"}}]}
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("r", reader), "--name", "Reader")
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "publish", "Reader")
    r = life.run("segment", "stop", "UK contacts", code=2)
    assert "Reader" in r.stderr
    life.run("segment", "use", "Reader", "--kind", "journey", "--user", "Welcome", "--role", "entry")
    r = life.run("segment", "stop", "Reader", code=2)
    assert "journey Welcome" in r.stderr
    r = life.run("segment", "edit", "Reader", life.definition("uk", UK), code=2)
    assert "Welcome" in r.stderr
    life.run("segment", "unuse", "Reader", "--kind", "journey", "--user", "Welcome", "--role", "entry")
    life.run("segment", "stop", "Reader")
    life.run("segment", "stop", "UK contacts")
    assert life.json("segment", "show", "UK contacts")["status"] == "stopped"
    r = life.run("segment", "refresh", "UK contacts", code=2)
    assert "stopped" in r.stderr


def test_rename_delete_restore(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "rename", "UK contacts", "British")
    assert life.members("British") == [1, 3, 5]
    life.run("segment", "delete", "British")
    assert life.json("segment", "list") == []
    life.run("segment", "show", "British", code=2)
    r = life.run("segment", "create", life.definition("uk", UK), "--name", "British", code=2)
    assert "restore" in r.stderr
    life.run("segment", "restore", "British")
    info = life.json("segment", "show", "British")
    assert (info["status"], info["size"]) == ("stopped", 3)
    assert life.members("British") == [1, 3, 5]


def test_limits_are_enforced_from_the_workspace_config(life: Lifecycle) -> None:
    cfg = life.ws / "segmenta.yaml"
    cfg.write_text(cfg.read_text() + "segments:\n  limits: {preset: microsoft, dynamic: 1, static: 1}\n")
    life.run("segment", "create", life.definition("uk", UK))
    r = life.run("segment", "create", life.definition("fr", FR), "--name", "France", code=2)
    assert "at most 1 dynamic segments" in r.stderr
    life.run("segment", "create", life.definition("fr", FR), "--name", "France", "--snapshot")
    r = life.run("segment", "create", "--list", "--audience", "contact", "--name", "L", code=2)
    assert "static" in r.stderr
    assert len(life.json("segment", "list")) == 2


def test_publish_against_a_changed_model_is_rejected(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    model = life.ws / "model.yaml"
    model.write_text(model.read_text().replace("country:", "land:"))
    r = life.run("segment", "publish", "UK contacts", code=2)
    assert "country" in r.stderr
    assert life.json("segment", "show", "UK contacts")["status"] == "draft"


def test_store_option_does_not_outlive_its_command(life: Lifecycle) -> None:
    """``--store`` applies to one invocation; library use afterwards in the same process uses its own store."""
    from segmenta.store import database
    from segmenta.workspace import Workspace

    life.run("segment", "list")
    with Workspace.open(life.ws) as ws:  # the library's own settings: no --store of the command before
        assert database.resolve_url(ws.path, ws.config) == database.resolve_url(ws.path, {})
