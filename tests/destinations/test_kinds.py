"""The other kinds and features: file and webhook destinations, delta sends, marketing lists, secrets at rest."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.destinations.conftest import CLIENT_SECRET, dynamics_args, ok, run, write_secrets
from tests.destinations.fake_dataverse import FakeAuthority, FakeDataverse

GOLD = {str(i) for i in range(1, 2_501, 2)}
SIGNING = "whsec-0123456789abcdef"


class Receiver:
    """A webhook receiver on loopback: checks every signature, answers 500 to the first ``fail`` calls."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.fail = fail
        owner = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["content-length"]))
                ts = self.headers["x-segmenta-timestamp"]
                want = "sha256=" + hmac.new(SIGNING.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(want, self.headers["x-segmenta-signature"]):
                    owner.bad_signatures += 1
                    self.send_response(401)
                elif owner.fail > 0:
                    owner.fail -= 1
                    self.send_response(500)
                else:
                    owner.bodies.append(json.loads(raw))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=1)
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_webhook_sends_signed_batches_and_retries(ws: Path, tmp_path: Path, receiver: Receiver) -> None:
    ok(
        run(
            ws,
            "destination",
            "create",
            "hook",
            "--kind",
            "webhook",
            "--set",
            f"url={receiver.url}",
            "--set",
            "batch_size=500",
            "--set",
            "backoff_seconds=0.01",
            *write_secrets(tmp_path, signing_secret=SIGNING),
        )
    )
    out = json.loads(ok(run(ws, "destination", "send", "hook", "Gold", "--columns", "contactid,tier", "--json")).stdout)
    assert out == {"rows": 1_250, "calls": 3, "retries": 1, "rejected": 0}
    assert receiver.bad_signatures == 0
    assert [b["batch"] for b in receiver.bodies] == [0, 1, 2]
    assert receiver.bodies[0]["reset"] is True
    rows = [r for b in receiver.bodies for r in b["rows"]]
    assert {str(r["contactid"]) for r in rows} == GOLD and {r["tier"] for r in rows} == {"Gold"}


def test_file_destination_writes_csv_and_parquet(ws: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "exports"
    ok(run(ws, "destination", "create", "csv", "--kind", "file", "--set", f"path={out}"))
    ok(run(ws, "destination", "create", "pq", "--kind", "file", "--set", f"path={out}", "--set", "format=parquet"))
    assert json.loads(ok(run(ws, "destination", "send", "csv", "Gold", "--columns", "tier", "--json")).stdout)["rows"] == 1_250
    lines = (out / "Gold.csv").read_text().splitlines()
    assert lines[0] == '"tier","contactid"' and len(lines) == 1_251
    ok(run(ws, "destination", "send", "pq", "Gold", "--json"))
    assert sorted(pq.read_table(out / "Gold.parquet").column("contactid").to_pylist()) == list(range(1, 2_501, 2))
    r = run(ws, "destination", "send", "csv", "Gold", "--columns", "email")
    assert r.returncode == 2 and "pii" in r.stderr  # email is marked pii; the destination does not accept PII
    r = run(ws, "destination", "send", "csv", "Gold", "--columns", "nope")
    assert r.returncode == 2 and "no column 'nope'" in r.stderr


def test_delta_sends_only_what_changed(ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority) -> None:
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority)))
    ok(run(ws, "destination", "send", "d365", "Gold", "--json"))
    # 2 and 4 join (tier Gold), 1 leaves
    (tmp_path / "change.csv").write_text("contactid,tier\n2,Gold\n4,Gold\n1,Silver\n")
    ok(run(ws, "records", "upsert", "contact", str(tmp_path / "change.csv")))
    before = dict(dataverse.calls)
    out = json.loads(ok(run(ws, "destination", "send", "d365", "Gold", "--delta", "--json")).stdout)
    assert out["rows"] == 2 and out["calls"] == 1
    assert dataverse.members_of("Gold members") == (GOLD | {"2", "4"}) - {"1"}
    assert dataverse.calls.get("msdynmkt_ListGroupMembers", 0) == before.get("msdynmkt_ListGroupMembers", 0)
    out = json.loads(ok(run(ws, "destination", "send", "d365", "Gold", "--delta", "--json")).stdout)
    assert out == {"rows": 0, "calls": 0, "retries": 0, "rejected": 0}  # nothing changed since


def test_auto_send_after_refresh_sends_the_delta(ws: Path, tmp_path: Path) -> None:
    from segmenta.destinations.service import Destinations
    from segmenta.services.segments import Segments

    out = tmp_path / "exports"
    ok(run(ws, "destination", "create", "csv", "--kind", "file", "--set", f"path={out}"))
    ok(run(ws, "destination", "attach", "csv", "Gold"))
    with Segments.open(ws) as segs:
        d = Destinations(segs)
        first = d.after_refresh("Gold")  # no earlier send: in full
        assert first[0]["rows"] == 1_250
        assert "auto_send" in d.show("csv") and d.show("csv")["auto_send"] == ["Gold"]
    (tmp_path / "change.csv").write_text("contactid,tier\n2,Gold\n1,Silver\n")
    ok(run(ws, "records", "upsert", "contact", str(tmp_path / "change.csv")))
    with Segments.open(ws) as segs:
        d = Destinations(segs)
        second = d.after_refresh("Gold")
        assert second[0]["rows"] == 1
        delta = [p for p in out.iterdir() if ".delta-" in p.name]
        assert len(delta) == 1
        assert sorted(delta[0].read_text().splitlines()[1:]) == ['1,"exited"', '2,"entered"']
        history = d.history("csv")
        assert [h["mode"] for h in history] == ["delta", "full"] and history[0]["trigger"] == "refresh"


def test_marketing_list_target(ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority) -> None:
    ok(
        run(
            ws,
            "destination",
            "create",
            "list",
            *dynamics_args(tmp_path, dataverse, authority, segment_name="Gold list", target="list"),
        )
    )
    assert json.loads(ok(run(ws, "destination", "send", "list", "Gold", "--json")).stdout)["calls"] == 2
    assert dataverse.list_named("Gold list") == GOLD
    (tmp_path / "change.csv").write_text("contactid,tier\n1,Silver\n")
    ok(run(ws, "records", "upsert", "contact", str(tmp_path / "change.csv")))
    ok(run(ws, "destination", "send", "list", "Gold", "--json"))
    assert dataverse.list_named("Gold list") == GOLD - {"1"}
    assert len(dataverse.lists) == 1 and dataverse.violations == []


def test_secrets_are_encrypted_at_rest_and_the_key_rotates(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    r = ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority)))
    key = ws / "destinations.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    con = sqlite3.connect(ws / "store.sqlite")
    (token,) = con.execute("SELECT secrets FROM destinations").fetchone()
    assert CLIENT_SECRET not in token
    assert CLIENT_SECRET in Fernet(key.read_text().strip().encode()).decrypt(token.encode()).decode()
    old_key = key.read_text()
    ok(run(ws, "destination", "rotate-key"))
    assert key.read_text() != old_key and stat.S_IMODE(key.stat().st_mode) == 0o600
    ok(run(ws, "destination", "test", "d365"))  # still readable with the new key
    outputs = [r.stdout + r.stderr]
    for args in (["show", "d365"], ["list", "--json"], ["history", "d365"]):
        res = ok(run(ws, "destination", *args))
        outputs.append(res.stdout + res.stderr)
    assert not any(CLIENT_SECRET in o for o in outputs)
    # without the key, the secrets cannot be read: a clear error that shows nothing of them
    key.unlink()
    r = run(ws, "destination", "test", "d365")
    assert r.returncode == 1 and "destinations.key" in r.stderr and CLIENT_SECRET not in r.stderr


def test_the_key_can_come_from_the_environment(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    env = {"SEGMENTA_SECRET_KEY": Fernet.generate_key().decode()}
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority), env=env))
    assert not (ws / "destinations.key").exists()
    ok(run(ws, "destination", "test", "d365", env=env))
    r = run(ws, "destination", "test", "d365", env={"SEGMENTA_SECRET_KEY": Fernet.generate_key().decode()})
    assert r.returncode == 1 and "another key" in r.stderr


def test_sync_sends_changed_attached_segments_and_reports_failures(
    ws: Path, tmp_path: Path, dataverse: FakeDataverse, authority: FakeAuthority
) -> None:
    out = tmp_path / "exports"
    ok(run(ws, "destination", "create", "csv", "--kind", "file", "--set", f"path={out}"))
    ok(run(ws, "destination", "create", "d365", *dynamics_args(tmp_path, dataverse, authority, max_attempts="2")))
    ok(run(ws, "destination", "attach", "csv", "Gold"))
    ok(run(ws, "destination", "attach", "d365", "Gold"))
    first = json.loads(ok(run(ws, "destination", "sync", "--json")).stdout)
    assert sorted((r["destination"], r["rows"]) for r in first) == [("csv", 1_250), ("d365", 1_250)]
    assert json.loads(ok(run(ws, "destination", "sync", "--json")).stdout) == []  # nothing changed
    (tmp_path / "change.csv").write_text("contactid,tier\n2,Gold\n")
    ok(run(ws, "records", "upsert", "contact", str(tmp_path / "change.csv")))
    dataverse.faults = [503, 503]  # the Dynamics send fails; the file send still happens
    r = run(ws, "destination", "sync")
    assert r.returncode == 1 and "d365" in r.stderr
    assert "sent 'Gold' to 'csv': 1 rows" in r.stdout
    failed = json.loads(ok(run(ws, "destination", "history", "d365", "--json")).stdout)[0]
    assert failed["status"] == "error" and "kept failing" in failed["message"]
    ok(run(ws, "destination", "sync"))  # the next sync sends it
    assert dataverse.members_of("Gold members") == GOLD | {"2"}


def test_an_attached_segment_is_in_use_until_detached(ws: Path, tmp_path: Path) -> None:
    ok(run(ws, "destination", "create", "csv", "--kind", "file", "--set", f"path={tmp_path / 'x'}"))
    ok(run(ws, "destination", "attach", "csv", "Gold"))
    r = run(ws, "segment", "stop", "Gold")
    assert r.returncode == 2 and "csv" in r.stderr  # the refusal names the destination using it
    ok(run(ws, "destination", "detach", "csv", "Gold"))
    ok(run(ws, "segment", "stop", "Gold"))
    r = run(ws, "destination", "attach", "csv", "Gold")
    assert r.returncode == 2 and "live" in r.stderr
    assert json.loads(ok(run(ws, "destination", "show", "csv")).stdout)["auto_send"] == []
