"""Contract section 8 end to end: the CLI against a fake Dataverse and token authority over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from tests.destinations.conftest import CLIENT_SECRET, dynamics_args, ok, run
from tests.destinations.fake_dataverse import FakeAuthority, FakeDataverse

GOLD = {str(i) for i in range(1, 2_501, 2)}


def test_send_creates_the_static_segment_then_replaces_its_members(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority)))
    r = ok(run(ws, "destination", "send", "d365", "Gold", "--json"))
    out = json.loads(r.stdout)
    assert out == {"rows": 1_250, "calls": 2, "retries": 0, "rejected": 0}
    seg = dataverse.segment_named("Gold members")
    assert seg is not None and seg["msdynmkt_type"] == 10
    assert dataverse.members_of("Gold members") == GOLD
    assert dataverse.violations == []
    # a member is added by hand at the receiver; the next send leaves exactly the segment's members
    key = (seg["msdynmkt_segmentid"], next(iter(k[1] for k in dataverse.members)))
    dataverse.members[key].add("99999")
    out = json.loads(ok(run(ws, "destination", "send", "d365", "Gold", "--json")).stdout)
    assert out["rows"] == 1_250
    assert dataverse.members_of("Gold members") == GOLD
    assert len([s for s in dataverse.segments.values() if s["msdynmkt_displayname"] == "Gold members"]) == 1
    assert dataverse.calls["msdynmkt_RemoveStaticMembers"] >= 2
    assert dataverse.violations == []


def test_retries_429_with_retry_after_and_5xx_and_dropped_connections(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority, concurrency="2")))
    dataverse.faults = [429, 500, "drop", 503, 502]
    out = json.loads(ok(run(ws, "destination", "send", "d365", "Gold", "--json")).stdout)
    assert out["retries"] == 5
    assert dataverse.max_in_flight <= 2  # the concurrency setting holds
    assert out["rows"] == 1_250 and out["rejected"] == 0
    assert dataverse.members_of("Gold members") == GOLD
    assert dataverse.violations == []


def test_a_timeout_is_retried(ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority) -> None:
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority, timeout_seconds="1")))
    dataverse.slow_seconds = 2.5
    dataverse.faults = ["slow"]
    out = json.loads(ok(run(ws, "destination", "send", "d365", "Gold", "--json")).stdout)
    assert out["retries"] >= 1
    assert dataverse.members_of("Gold members") == GOLD


def test_rejected_ids_are_counted_and_kept_in_a_file(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority)))
    dataverse.reject = {"7", "1201"}
    r = ok(run(ws, "destination", "send", "d365", "Gold", "--json"))
    assert json.loads(r.stdout)["rejected"] == 2
    assert dataverse.members_of("Gold members") == GOLD - {"7", "1201"}
    path = Path(r.stderr.split("rejected ids: ", 1)[1].strip())
    assert path.read_text().split() == ["id", "7", "1201"]
    hist = json.loads(ok(run(ws, "destination", "history", "d365", "--json")).stdout)
    assert hist[0]["rejected"] == 2 and hist[0]["status"] == "done"


def test_a_segment_without_contactid_is_refused_before_any_call(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority)))
    r = run(ws, "destination", "send", "d365", "Accounts", "--json")
    assert r.returncode == 2, r.stderr
    assert "contactid" in r.stderr
    assert dataverse.calls == {} and authority.requests == []


def test_test_connection_checks_the_credentials(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority)))
    r = ok(run(ws, "destination", "test", "d365"))
    assert "will be created" in r.stdout
    authority.client_secret = "rotated-at-azure"
    r = run(ws, "destination", "test", "d365")
    assert r.returncode == 1
    assert "invalid_client" in r.stderr
    assert CLIENT_SECRET not in r.stderr + r.stdout


def test_bad_settings_and_missing_secrets_are_refused_with_exit_2(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    r = run(ws, "destination", "create", "d365", "--kind", "dynamics365-marketing", "--set", "segment_name=X")
    assert r.returncode == 2
    assert "region and environment" in r.stderr and "--secret tenant_id" in r.stderr
    r = run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority, concurrency="60"))
    assert r.returncode == 2 and "concurrency" in r.stderr
    r = run(ws, "destination", "create", "x", "--kind", "nope")
    assert r.returncode == 2 and "dynamics365-marketing" in r.stderr
    assert json.loads(ok(run(ws, "destination", "list", "--json")).stdout) == []


def test_region_and_environment_make_the_org_url(ws: Path, tmp_path: Path) -> None:
    args = ["--kind", "dynamics365-marketing", "--set", "region=crm4", "--set", "environment=socktown", "--set", "segment_name=S"]
    from tests.destinations.conftest import write_secrets

    ok(run(ws, "destination", "create", "prod", *args, *write_secrets(tmp_path, tenant_id="t", client_id="c", client_secret="s")))
    from segmenta.destinations.dynamics import DynamicsSettings

    shown = json.loads(ok(run(ws, "destination", "show", "prod")).stdout)
    assert DynamicsSettings.model_validate(shown["settings"]).url == "https://socktown.crm4.dynamics.com"
    assert shown["secrets"] == {"tenant_id": "set", "client_id": "set", "client_secret": "set"}


def test_an_org_serving_an_older_web_api_version_is_found(ws: Path, tmp_path: Path, authority: FakeAuthority) -> None:
    with FakeDataverse(authority, version="v9.0") as dv:
        ok(run(ws, "destination", "create", "old", *dynamics_args(tmp_path, dv, authority)))
        out = json.loads(ok(run(ws, "destination", "send", "old", "Gold", "--json")).stdout)
        assert out["rows"] == 1_250 and dv.members_of("Gold members") == GOLD
