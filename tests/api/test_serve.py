"""``segmenta serve`` for real: uvicorn in a subprocess on loopback, called over HTTP with httpx.

Also the first start: the admin's password and token are printed once, and never again.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import segmenta
from tests.api.conftest import GOLD
from tests.conftest import serve_process


@contextmanager
def serving(workspace: Path) -> Iterator[tuple[str, list[str]]]:
    """Run ``segmenta serve`` until the block ends; yields (base URL, the output lines so far)."""
    with serve_process("--workspace", str(workspace)) as (_proc, base, lines):
        yield base, lines


def concurrent_estimates_are_right(client: httpx.Client) -> list[str]:
    """Estimates from four threads (each its own DuckDB cursor) while the main thread refreshes: every count right."""

    def count(tier: str) -> int | None:
        definition = {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": tier}}]}
        return client.post("/api/definitions/estimate", json={"definition": definition}).json().get("count")

    expected = {tier: count(tier) for tier in ("Gold", "Silver", "Bronze")}  # one at a time first
    assert expected["Gold"] == 2 and all(expected.values())
    wrong: list[str] = []

    def estimate(tier: str) -> None:
        for _ in range(10):
            got = count(tier)
            if got != expected[tier]:
                wrong.append(f"{tier}: {got}")

    threads = [threading.Thread(target=estimate, args=(tier,)) for tier in (*expected, "Gold")]
    for t in threads:
        t.start()
    for _ in range(3):
        if client.post("/api/segments/Gold/refresh").status_code != 200:
            wrong.append("refresh failed")
    for t in threads:
        t.join()
    return wrong


def cli(workspace: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "segmenta", "--workspace", str(workspace), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def workspace(conformance_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    ws = segmenta.Workspace.init(path, model=conformance_dir / "model.yaml")
    for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
        ws.load(csv_file.stem, csv_file)
    ws.close()
    return path


def test_serve_on_loopback_prints_the_first_admin_once(workspace: Path) -> None:
    with serving(workspace) as (base, lines):
        first = "".join(lines)
        password = re.search(r"with password: (\S+)", first)
        token = re.search(r"API token \(Authorization: Bearer \.\.\.\): (\S+)", first)
        assert password and token, first
        assert f"at {base}/" in first
        with httpx.Client(base_url=base) as client:
            bearer = {"Authorization": f"Bearer {token.group(1)}"}
            assert client.get("/api/model").status_code == 401
            assert client.get("/api/auth/me", headers=bearer).json() == {
                "username": "admin",
                "role": "admin",
                "pii_restricted": False,
            }
            assert client.post("/api/auth/login", json={"username": "admin", "password": password.group(1)}).status_code == 200
            assert client.post("/api/definitions/estimate", json={"definition": GOLD}).json()["count"] == 2
            created = client.post("/api/segments", json={"definition": GOLD, "name": "Gold"})
            assert created.status_code == 201
            assert client.post("/api/segments/Gold/publish").json()["size"] == 2
            assert client.get("/api/segments/Gold/members.csv").text.splitlines() == ["contactid", "1", "3"]
            assert concurrent_estimates_are_right(client) == []
            assert client.get("/docs").status_code == 200
            assert client.get("/openapi.json").json()["info"]["title"] == "segmenta"
            assert client.get("/").status_code == 200
    output = "".join(lines)
    assert output.count(password.group(1)) == 1 and output.count(token.group(1)) == 1
    with serving(workspace) as (base, again), httpx.Client(base_url=base) as client:
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert me.status_code == 200
        assert client.get("/api/segments", headers={"Authorization": f"Bearer {token.group(1)}"}).json()[0]["status"] == "live"
        # local recovery while the service runs: a new token and a new password from the command line
        fresh = cli(workspace, "users", "token", "admin").strip()
        assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh}"}).json()["username"] == "admin"
        new_password = cli(workspace, "users", "reset-password", "admin").split(": ", 1)[1].strip()
        assert client.post("/api/auth/login", json={"username": "admin", "password": password.group(1)}).status_code == 401
        assert client.post("/api/auth/login", json={"username": "admin", "password": new_password}).status_code == 200
        assert cli(workspace, "users", "list").split("\t")[:2] == ["admin", "admin"]
    second = "".join(again)
    assert "First start" not in second and "password" not in second
    assert token.group(1) not in second
