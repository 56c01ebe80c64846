"""Fixtures of the destination tests: a small CRM workspace made through the CLI, a fake token
authority and a fake Dataverse on loopback (tests/destinations/fake_dataverse.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.destinations.fake_dataverse import FakeAuthority, FakeDataverse

TENANT, CLIENT_ID, CLIENT_SECRET = "tenant-7d1c", "client-5e2a", "s3cr3t-Value-never-shown-0x51"
SECRET_KEY_ENV = "SEGMENTA_SECRET_KEY"

MODEL = {
    "tables": {
        "contact": {
            "key": "contactid",
            "columns": {
                "contactid": {"type": "integer"},
                "email": {"type": "text", "pii": True},
                "tier": {"type": "text"},
            },
        },
        "account": {"key": "accountid", "columns": {"accountid": {"type": "integer"}, "name": {"type": "text"}}},
    },
}


def run(ws: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != SECRET_KEY_ENV}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "segmenta", "--workspace", str(ws), *args],
        capture_output=True,
        text=True,
        env=full,
        input=stdin,
        timeout=600,
    )


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def make_workspace(tmp: Path, contacts: int) -> Path:
    ws = tmp / "ws"
    (tmp / "model.yaml").write_text(yaml.safe_dump(MODEL))
    ok(run(ws, "init", "--model", str(tmp / "model.yaml")))
    with (tmp / "contact.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["contactid", "email", "tier"])
        for i in range(1, contacts + 1):
            w.writerow([i, f"c{i}@example.com", "Gold" if i % 2 else "Silver"])
    with (tmp / "account.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["accountid", "name"], [1, "Northwind"], [2, "Contoso"]])
    ok(run(ws, "load", "contact", str(tmp / "contact.csv")))
    ok(run(ws, "load", "account", str(tmp / "account.csv")))
    return ws


def publish(ws: Path, tmp: Path, name: str, where: dict | None, audience: str = "contact") -> None:
    definition = {"name": name, "audience": audience, "groups": [{"where": where}] if where else []}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(definition))
    ok(run(ws, "segment", "create", str(path), "--name", name))
    ok(run(ws, "segment", "publish", name))


def write_secrets(tmp: Path, **values: str) -> list[str]:
    args = []
    for k, v in values.items():
        p = tmp / f"{k}.txt"
        p.write_text(v + "\n")
        args += ["--secret", f"{k}=@{p}"]
    return args


def dynamics_args(
    tmp: Path, dv: FakeDataverse, auth: FakeAuthority, segment_name: str = "Gold members", **extra: str
) -> list[str]:
    sets = {
        "segment_name": segment_name,
        "org_url": dv.url,
        "authority": auth.url,
        "backoff_seconds": "0.01",
        "timeout_seconds": "5",
        **extra,
    }
    args = ["--kind", "dynamics365-marketing"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    return args + write_secrets(tmp, tenant_id=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture()
def authority() -> Iterator[FakeAuthority]:
    with FakeAuthority(tenant=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as a:
        yield a


@pytest.fixture()
def dataverse(authority: FakeAuthority) -> Iterator[FakeDataverse]:
    with FakeDataverse(authority) as dv:
        yield dv


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace of 2,500 contacts with the live segments Gold (odd ids) and Everyone."""
    tmp = tmp_path_factory.mktemp("dest")
    ws = make_workspace(tmp, 2_500)
    publish(ws, tmp, "Gold", {"attribute": "tier", "op": "eq", "value": "Gold"})
    publish(ws, tmp, "Accounts", {"attribute": "accountid", "op": "gt", "value": 0}, audience="account")
    return ws


@pytest.fixture()
def ws(built: Path, tmp_path: Path) -> Path:
    import shutil

    path = tmp_path / "ws"
    shutil.copytree(built, path)
    return path
