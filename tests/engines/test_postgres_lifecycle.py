"""Saved segments on PostgreSQL, through the CLI as a user runs them, and the service's requests side by side.

Membership and history live in the workspace's ``<schema>_meta`` schema on the server (the
store of saved segments stays SQLite in the workspace).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

import segmenta
from tests.engines.helpers import cli, drop

pytest_plugins = ["tests.engines.fixtures"]

CONFORMANCE = Path(__file__).resolve().parents[1] / "data" / "conformance"
EXPECTED = json.loads((CONFORMANCE / "expected.json").read_text())
NOW = {"SEGMENTA_NOW": EXPECTED["as_of"]}
NEVER = EXPECTED["members"]["never_ordered"]  # contacts who never ordered


@pytest.fixture
def ws(pg_url: str, tmp_path: Path) -> Iterator[Path]:
    """A PostgreSQL workspace made and loaded through the CLI, with the server's URL in segmenta.yaml."""
    path = tmp_path / "ws"
    path.mkdir()
    (path / "segmenta.yaml").write_text(yaml.safe_dump({"engine": "postgres", "postgres": {"url": pg_url}}))
    r = cli("--workspace", str(path), "init", "--model", str(CONFORMANCE / "model.yaml"), env=NOW)
    assert r.returncode == 0, r.stderr
    try:
        for csv_file in sorted((CONFORMANCE / "data").glob("*.csv")):
            r = cli("--workspace", str(path), "load", csv_file.stem, str(csv_file), env=NOW)
            assert r.returncode == 0, r.stderr
        yield path
    finally:
        drop(segmenta.Workspace.open(path))


def run(ws: Path, *args: str) -> str:
    r = cli("--workspace", str(ws), *args, env=NOW)
    assert r.returncode == 0, f"segmenta {' '.join(args)}: {r.stderr}"
    return r.stdout


def members(ws: Path, name: str, tmp_path: Path) -> list[int]:
    out = tmp_path / f"{name}.csv"
    run(ws, "segment", "members", name, "--out", str(out))
    return [int(k) for k in out.read_text().splitlines()[1:]]


def test_publish_refresh_members_history_in_segment_and_worker(ws: Path, tmp_path: Path) -> None:
    run(ws, "segment", "create", str(CONFORMANCE / "segments" / "never_ordered.json"), "--name", "never")
    run(ws, "segment", "publish", "never")
    assert members(ws, "never", tmp_path) == NEVER
    shown = json.loads(run(ws, "segment", "show", "never", "--json"))
    assert (shown["status"], shown["size"]) == ("live", len(NEVER))
    # the membership is on the server, in the workspace's meta schema
    schema = yaml.safe_load((ws / "segmenta.yaml").read_text())["postgres"]["schema"]
    opened = segmenta.Workspace.open(ws)
    try:
        tables = opened.engine.run(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}_meta'"
        ).column(0)
        assert f"members_{shown['id']}" in tables.to_pylist()
    finally:
        opened.close()

    # in_segment reads the stored membership
    inside = tmp_path / "inside.json"
    inside.write_text(json.dumps({"audience": "contact", "groups": [{"where": {"in_segment": "never"}}]}))
    assert run(ws, "segment", "evaluate", str(inside)).strip().splitlines()[-1] == f"{len(NEVER)} members"

    # contact NEVER[0] orders: a refresh lets them exit, and the history says so
    orders = (CONFORMANCE / "data" / "order.csv").read_text().rstrip("\n") + f"\n999,{NEVER[0]},5.0,2026-10-26T10:00:00,web\n"
    (tmp_path / "order.csv").write_text(orders)
    run(ws, "load", "order", str(tmp_path / "order.csv"))
    run(ws, "segment", "refresh", "never")
    assert members(ws, "never", tmp_path) == NEVER[1:]
    history = json.loads(run(ws, "segment", "history", "never", "--record", str(NEVER[0]), "--json"))
    assert "exited" in json.dumps(history) and "entered" in json.dumps(history)

    r = cli("--workspace", str(ws), "worker", "--once", env=NOW)
    assert r.returncode == 0, r.stderr
    assert members(ws, "never", tmp_path) == NEVER[1:]


def test_a_static_list_takes_keys(ws: Path, tmp_path: Path) -> None:
    run(ws, "segment", "create", "--list", "--audience", "contact", "--name", "picked")
    run(ws, "segment", "add", "picked", "3", "1")
    run(ws, "segment", "remove", "picked", "3")
    assert members(ws, "picked", tmp_path) == [1]


def test_import_csv_into_a_list(ws: Path, tmp_path: Path) -> None:
    run(ws, "segment", "create", "--list", "--audience", "contact", "--name", "emails")
    (tmp_path / "list.csv").write_text("email\n ANN@northwind.example \nnobody@example.com\n")
    counts = json.loads(run(ws, "segment", "import-csv", "emails", str(tmp_path / "list.csv"), "--json"))
    assert (counts["read"], counts["found"], counts["not_found"], counts["members"]) == (2, 1, 1, 1)


def test_the_service_runs_requests_side_by_side(ws: Path) -> None:
    """Two requests hold their workspaces at the same time: a connection pool, not one lock."""
    from segmenta.interfaces.api.app import create_app
    from segmenta.interfaces.api.runtime import Service

    service = Service(ws)
    try:
        both_inside = threading.Barrier(2, timeout=20)
        answers: list[int] = []
        failures: list[BaseException] = []

        def request() -> None:
            try:
                with service.workspace() as view:
                    both_inside.wait()  # a serialising lock would keep the second request out: BrokenBarrierError
                    answers.append(view.evaluate(CONFORMANCE / "segments" / "never_ordered.json", as_of=EXPECTED["as_of"]).count)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=request) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures and answers == [len(NEVER)] * 2

        # refreshes in one process reuse pooled connections (the TEMP delta table must not linger on them)
        with service.segments() as segs:
            created = segs.create(json.loads((CONFORMANCE / "segments" / "never_ordered.json").read_text()), name="never")
            segs.publish("never")
            for _ in range(3):
                segs.refresh("never")
            assert segs.members("never")[1] == NEVER

        admin = service.users.ensure_admin()
        assert admin is not None
        with TestClient(create_app(service=service)) as client:
            r = client.post(
                "/api/definitions/evaluate",
                json={
                    "definition": json.loads((CONFORMANCE / "segments" / "never_ordered.json").read_text()),
                    "as_of": EXPECTED["as_of"],
                },
                headers={"Authorization": f"Bearer {admin.token}"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["count"] == len(NEVER)
            auth = {"Authorization": f"Bearer {admin.token}"}
            r = client.get(f"/api/segments/{created['id']}/members.csv", headers=auth)  # streamed in batches
            assert r.status_code == 200, r.text
            assert r.text.splitlines() == ["contactid", *map(str, NEVER)]
            r = client.get(f"/api/segments/{created['id']}/history", headers=auth)
            assert r.status_code == 200, r.text
    finally:
        service.close()


def test_a_refresh_killed_in_its_transaction_leaves_the_previous_membership(ws: Path, tmp_path: Path) -> None:
    """SIGKILL inside the refresh's transaction: the server rolls it back when the connection drops."""
    import os
    import subprocess
    import sys

    from tests.conftest import sigkill_when

    run(ws, "segment", "create", str(CONFORMANCE / "segments" / "never_ordered.json"), "--name", "never")
    run(ws, "segment", "publish", "never")
    orders = (CONFORMANCE / "data" / "order.csv").read_text().rstrip("\n") + f"\n999,{NEVER[0]},5.0,2026-10-26T10:00:00,web\n"
    (tmp_path / "order.csv").write_text(orders)
    run(ws, "load", "order", str(tmp_path / "order.csv"))
    marker = tmp_path / "in-transaction"
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmenta", "--workspace", str(ws), "segment", "refresh", "never"],
        env={**os.environ, **NOW, "SEGMENTA_PLUGINS": "tests.killpoints", "SEGMENTA_TEST_HANG_IN_REFRESH": str(marker)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sigkill_when(marker, proc, timeout=120, what="its transaction")
    assert members(ws, "never", tmp_path) == NEVER
    assert "exited" not in run(ws, "segment", "history", "never", "--record", str(NEVER[0]), "--json")
    run(ws, "segment", "refresh", "never")
    assert members(ws, "never", tmp_path) == NEVER[1:]
