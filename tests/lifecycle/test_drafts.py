"""Edit never changes who is a member (contract 5.1); names; the lifecycle's state machine; show --json."""

from __future__ import annotations

import pytest

from tests.lifecycle.conftest import CONTACTS, Lifecycle
from tests.lifecycle.test_segments import CLICKED, FR, UK

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
SPARK_CASES = (
    "test_edit_of_a_live_segment_is_a_draft_and_refreshes_keep_evaluating_the_live_version",
    "test_a_publish_whose_evaluation_fails_keeps_the_live_version_its_members_and_the_draft",
)
#: ... and of those, these also with the store on PostgreSQL.
SPARK_ON_PG_STORE: tuple[str, ...] = ()

UK_ACTIVE = {
    "name": "UK contacts",
    "audience": "contact",
    "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK", "case_sensitive": False}}],
}


def test_edit_of_a_live_segment_is_a_draft_and_refreshes_keep_evaluating_the_live_version(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    out = life.run("segment", "edit", "UK contacts", life.definition("fr", FR)).stdout
    assert "draft" in out and "publish" in out
    # the data changes and the segment is refreshed: still the live (UK) definition, not the draft
    life.load_contacts([*CONTACTS, (7, "new@example.com", "UK", 0)], now="2026-10-02T12:00:00")
    life.run("segment", "refresh", "UK contacts", now="2026-10-02T12:00:00")
    life.run("worker", "--once", now="2026-10-03T12:00:00")
    assert life.members("UK contacts") == [1, 3, 5, 7]
    runs = life.json("segment", "history", "UK contacts")
    assert [(r["trigger"], r["version"]) for r in runs] == [("publish", 1), ("refresh", 1), ("worker", 1)]
    assert "edit" not in {r["trigger"] for r in runs}
    # a plain evaluation through in_segment reads the live membership too
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "UK contacts"}}]}
    assert life.run("segment", "evaluate", life.definition("r", reader)).stdout.strip().endswith("4 members")


def test_an_unchanged_definition_saves_no_version_and_an_unchanged_publish_none_either(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "edit", "UK contacts", life.definition("same", UK_ACTIVE))  # equal after validation
    assert life.json("segment", "show", "UK contacts")["version"] == 1
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "edit", "UK contacts", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts", now="2026-10-01T13:00:00")
    info = life.json("segment", "show", "UK contacts")
    assert (info["version"], info["live_version"], info["has_draft"]) == (1, 1, False)
    assert [v["version"] for v in life.json("segment", "versions", "UK contacts")] == [1]


def test_editing_back_to_the_live_definition_drops_the_draft(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "edit", "UK contacts", life.definition("fr", FR))
    assert life.json("segment", "show", "UK contacts")["draft_version"] == 2
    life.run("segment", "edit", "UK contacts", life.definition("uk", UK))
    info = life.json("segment", "show", "UK contacts")
    assert (info["version"], info["draft_version"], info["has_draft"]) == (1, None, False)
    life.run("segment", "publish", "UK contacts")
    assert life.members("UK contacts") == [1, 3, 5]


def test_a_stopped_segment_edited_then_published_goes_live_with_the_new_version(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "stop", "UK contacts")
    life.run("segment", "edit", "UK contacts", life.definition("fr", FR))
    assert life.members("UK contacts") == [1, 3, 5]
    life.run("segment", "activate", "UK contacts", "--status-reason", "ready")
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["live_version"], info["size"]) == ("live", 2, 2)


def test_show_json_tells_versions_schedule_and_who_uses_it(life: Lifecycle) -> None:
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "UK contacts"}}]}
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("r", reader), "--name", "Reader")
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "publish", "Reader")
    life.run("segment", "use", "UK contacts", "--kind", "journey", "--user", "Welcome", "--role", "entry")
    info = life.json("segment", "show", "UK contacts")
    for key in ("id", "name", "status", "status_reason", "kind", "version", "size", "live_version", "draft_version"):
        assert key in info
    assert isinstance(info["id"], int)
    assert (info["last_refresh_at"], info["next_refresh_at"]) == ("2026-10-01T12:00:00", "2026-10-01T12:30:00")
    reader_id = life.json("segment", "show", "Reader")["id"]
    assert info["used_by"] == [
        {"kind": "segment", "name": "Reader", "role": "in_segment", "id": reader_id, "status": "live"},
        {"kind": "journey", "name": "Welcome", "role": "entry"},
    ]
    assert info["waiting"] is None and info["lease"] is None


def test_names_are_trimmed_limited_to_200_characters_and_may_contain_a_slash(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK), "--name", "  EMEA/UK  ")
    assert life.json("segment", "show", "EMEA/UK")["name"] == "EMEA/UK"
    life.run("segment", "publish", "EMEA/UK")
    assert life.members("EMEA/UK") == [1, 3, 5]
    r = life.run("segment", "create", life.definition("fr", FR), "--name", "x" * 201, code=2)
    assert "at most 200 characters" in r.stderr and "201" in r.stderr
    life.run("segment", "create", life.definition("fr", FR), "--name", "y" * 200)
    r = life.run("segment", "create", life.definition("fr", FR), "--name", "   ", code=2)
    assert "name" in r.stderr
    r = life.run("segment", "create", life.definition("fr", FR), "--name", "bad\x00name", code=2)
    assert "control characters" in r.stderr
    r = life.run("segment", "rename", "EMEA/UK", "z" * 300, code=2)
    assert "at most 200 characters" in r.stderr
    life.run("segment", "rename", "EMEA/UK", " EMEA/GB ")
    assert [s["name"] for s in life.json("segment", "list")] == ["EMEA/GB", "y" * 200]
    long_list = {
        "name": "l" * 250,
        "audience": "contact",
        "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}],
    }
    r = life.run("segment", "create", life.definition("long", long_list), code=2)
    assert "/name" in r.stderr and "at most 200" in r.stderr


def test_illegal_transitions_are_conflicts_naming_the_status_and_what_is_allowed(life: Lifecycle) -> None:
    life.run("segment", "create", life.definition("uk", UK))
    r = life.run("segment", "stop", "UK contacts", code=2)
    assert "is draft" in r.stderr and "allowed now: publish" in r.stderr
    r = life.run("segment", "refresh", "UK contacts", code=2)
    assert "is draft" in r.stderr and "publish it first" in r.stderr
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "stop", "UK contacts")
    r = life.run("segment", "stop", "UK contacts", code=2)
    assert "is stopped" in r.stderr and "only a live segment can be stopped" in r.stderr


def test_the_transition_table_is_the_one_rule_and_refusals_are_conflicts() -> None:
    import pytest

    from segmenta.errors import Conflict
    from segmenta.services.states import TRANSITIONS, Action, Status, allowed, transition
    from segmenta.store.models import STATUSES

    assert tuple(Status) == tuple(STATUSES)  # stored values stay the contract's strings
    assert transition("S", "live", Action.STOP) is Status.STOPPED and Status.STOPPED == "stopped"
    with pytest.raises(Conflict) as caught:
        transition("S", "expired", Action.READY)
    assert "is expired" in str(caught.value) and "draft first" in str(caught.value)
    assert "draft" in str(caught.value).split("allowed now:")[1]
    assert Action.PUBLISH not in allowed(Status.EXPIRED) and Action.DRAFT in allowed(Status.EXPIRED)
    assert all(isinstance(to, Status) for table in TRANSITIONS.values() for to in table.values())


def test_a_publish_parses_and_compiles_its_definition_once(life: Lifecycle, monkeypatch: object) -> None:
    import segmenta.compiler.compile as compile_module
    import segmenta.services.lifecycle_base as base_module
    import segmenta.services.segment_status as status_module
    from segmenta.services.segments import Segments

    calls: list[str] = []

    def counting(what: str, real):  # type: ignore[no-untyped-def]
        def spy(defn, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(what)
            return real(defn, *args, **kwargs)

        return spy

    life.run("segment", "create", life.definition("clicked", CLICKED), "--name", "Clicked")  # its cadence reads it too
    for module in (base_module, status_module):
        monkeypatch.setattr(module, "parse_definition", counting("parse", module.parse_definition))  # type: ignore[attr-defined]
    monkeypatch.setattr(compile_module, "compile_definition", counting("compile", compile_module.compile_definition))  # type: ignore[attr-defined]
    with Segments.open(life.ws, store_url=life.store) as segs:
        assert segs.publish("Clicked").size == 2
    assert calls == ["parse", "compile"]


def test_an_edit_while_a_first_publish_is_under_way_waits_as_a_draft(life: Lifecycle) -> None:
    from sqlalchemy import select

    from segmenta.store.database import Store, resolve_url
    from segmenta.store.models import Segment

    life.run("segment", "create", life.definition("uk", UK))
    store = Store(resolve_url(life.ws, {}, life.store))
    try:  # a publish that started evaluating version 1 (or was killed doing so)
        with store.session() as s:
            seg = s.scalar(select(Segment).where(Segment.name == "UK contacts"))
            assert seg is not None
            seg.status, seg.status_reason = "going_live", "publishing"
    finally:
        store.close()
    life.run("segment", "edit", "UK contacts", life.definition("fr", FR))
    info = life.json("segment", "show", "UK contacts")
    assert (info["current_version"], info["draft_version"]) == (1, 2)
    life.run("segment", "publish", "UK contacts")
    assert life.members("UK contacts") == [2, 6]
    table = life.run("segment", "list").stdout
    assert "live" in table and "draft v" not in table


def test_show_prints_who_uses_a_segment_for_people(life: Lifecycle) -> None:
    reader = {"audience": "contact", "groups": [{"where": {"in_segment": "UK contacts"}}]}
    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "create", life.definition("r", reader), "--name", "Reader")
    out = life.run("segment", "show", "UK contacts").stdout
    assert "segment Reader (in_segment)" in out and "'kind'" not in out


def test_a_publish_whose_evaluation_fails_keeps_the_live_version_its_members_and_the_draft(life: Lifecycle) -> None:
    import shutil

    from sqlglot import exp

    import segmenta

    life.run("segment", "create", life.definition("uk", UK))
    life.run("segment", "publish", "UK contacts")
    life.run("segment", "edit", "UK contacts", life.definition("clicked", CLICKED))
    # The new version reads interactions; their data is gone, so it compiles but its evaluation fails.
    ws = segmenta.Workspace.open(life.ws)
    try:
        if ws.engine.dialect == "spark":  # a table is a directory of Parquet files
            shutil.rmtree(life.ws / "spark-tables" / "interaction")
        else:
            ws.engine.execute([exp.Drop(tables=[exp.to_table("interaction", quoted=True)], kind="TABLE")])
    finally:
        ws.close()
    r = life.run("segment", "publish", "UK contacts", code=1, now="2026-10-01T13:00:00")
    assert "interaction" in (r.stderr + r.stdout).lower()
    info = life.json("segment", "show", "UK contacts")
    assert (info["status"], info["current_version"], info["live_version"], info["size"]) == ("live", 1, 1, 3)
    assert (info["draft_version"], info["has_draft"]) == (2, True)
    assert info["next_refresh_at"] == "2026-10-02T12:00:00"  # still scheduled: the worker keeps refreshing it
    assert life.members("UK contacts") == [1, 3, 5]
    runs = life.json("segment", "history", "UK contacts")
    assert [(r["trigger"], r["version"], r["status"]) for r in runs] == [("publish", 1, "done"), ("publish", 2, "error")]
    assert "interaction" in (runs[-1]["message"] or "").lower()
    life.run("worker", "--once", now="2026-10-02T12:00:00")  # refreshes the version in force, not the failing draft
    assert life.json("segment", "history", "UK contacts")[-1]["version"] == 1
    assert life.members("UK contacts") == [1, 3, 5]
    assert life.json("segment", "show", "UK contacts")["status"] == "live"


def test_a_name_made_only_of_digits_is_refused_since_the_api_reads_digits_as_an_id(life: Lifecycle) -> None:
    from segmenta.errors import RejectedInput
    from segmenta.services.segments import Segments

    digits = "a segment name needs at least one character that is not a digit; the REST API reads digits as an id"
    r = life.run("segment", "create", life.definition("uk", UK), "--name", " 7 ", code=2)
    assert "--name" in r.stderr and digits in r.stderr
    r = life.run("segment", "create", life.definition("n", {**UK, "name": "2026"}), code=2)
    assert "/name" in r.stderr and digits in r.stderr
    r = life.run("segment", "create", "--list", "--audience", "contact", "--name", "42", code=2)
    assert digits in r.stderr
    life.run("segment", "create", life.definition("uk", UK))
    r = life.run("segment", "rename", "UK contacts", "1", code=2)
    assert "new name" in r.stderr and digits in r.stderr
    assert [s["name"] for s in life.json("segment", "list")] == ["UK contacts"]  # nothing changed
    for fine in ("7a", "2026 Q1", "1/2", "-1"):  # one non-digit is enough
        life.run("segment", "create", life.definition("fr", FR), "--name", fine)
    with Segments.open(life.ws, store_url=life.store) as segs:
        with pytest.raises(RejectedInput, match="not a digit"):
            segs.create(UK, name="123")
        with pytest.raises(RejectedInput, match="REST API reads digits as an id"):
            segs.rename("7a", "8")
        assert segs.show("7a")["name"] == "7a"
