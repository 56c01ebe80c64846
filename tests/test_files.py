"""Files segmenta writes: output never follows a planted symlink, and workspace files are private to their owner."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

AS_OF = "2026-10-27T12:00:00"


def segmenta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, conformance_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("files") / "ws"
    assert segmenta("--workspace", str(path), "init", "--model", str(conformance_dir / "model.yaml")).returncode == 0
    r = segmenta("--workspace", str(path), "load", "contact", str(conformance_dir / "data" / "contact.csv"))
    assert r.returncode == 0, r.stderr
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_out_does_not_follow_a_planted_partial_symlink(ws: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out_dir = tmp_path / "shared"
    out_dir.mkdir()
    out = out_dir / "out.csv"
    (out_dir / "out.csv.partial").symlink_to(victim)  # what the old writer opened and followed
    seg = tmp_path / "all.json"
    seg.write_text(json.dumps({"audience": "contact", "groups": [{"where": {"all": []}}]}))
    r = segmenta("--workspace", str(ws), "segment", "evaluate", str(seg), "--as-of", AS_OF, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious\n"
    assert out.read_text().splitlines() == ["contactid", "1", "2", "3", "4", "5", "7", "8"]
    assert not out.is_symlink()
    assert mode(out) == 0o600  # members are customer data: readable by their owner only
    assert sorted(p.name for p in out_dir.iterdir()) == ["out.csv", "out.csv.partial"]  # no temporary file left


def test_out_replaces_a_symlink_target_name_instead_of_writing_through_it(ws: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out.csv"
    out.symlink_to(victim)
    seg = tmp_path / "none.json"
    seg.write_text(json.dumps({"audience": "contact", "groups": [{"where": {"any": []}}]}))
    r = segmenta("--workspace", str(ws), "segment", "evaluate", str(seg), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious\n"
    assert not out.is_symlink() and out.read_text() == "contactid\n"


def test_out_into_a_missing_directory_is_a_clear_error(ws: Path, tmp_path: Path) -> None:
    seg = tmp_path / "none.json"
    seg.write_text(json.dumps({"audience": "contact", "groups": [{"where": {"any": []}}]}))
    out = tmp_path / "nowhere" / "out.csv"
    r = segmenta("--workspace", str(ws), "segment", "evaluate", str(seg), "--out", str(out))
    assert r.returncode == 2
    assert r.stderr == f"{out}: cannot write the keys: No such file or directory\n"
    assert not out.parent.exists()


def test_a_fresh_workspace_is_private_to_its_owner(tmp_path: Path, conformance_dir: Path) -> None:
    # Under the usual umask 022, files would be created 0644 (world-readable) unless segmenta sees to it.
    ws = tmp_path / "ws"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "segmenta", "--workspace", str(ws), *args],
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.umask(0o022),
        )
        assert r.returncode == 0, r.stderr
        return r

    cli("init", "--model", str(conformance_dir / "model.yaml"))
    cli("load", "contact", str(conformance_dir / "data" / "contact.csv"))
    seg = tmp_path / "all.json"
    seg.write_text(json.dumps({"name": "everyone", "audience": "contact", "groups": [{"where": {"all": []}}]}))
    cli("segment", "create", str(seg))
    cli("segment", "publish", "everyone")
    members = tmp_path / "members.csv"
    cli("segment", "members", "everyone", "--out", str(members))

    assert mode(ws) == 0o700
    files = {p.name: mode(p) for p in ws.iterdir() if p.is_file()}
    for name in ("model.yaml", "segmenta.yaml", "data.duckdb", "store.sqlite"):
        assert files.get(name) == 0o600, f"{name}: {files}"
    assert {name: m for name, m in files.items() if m & 0o077} == {}  # nothing readable by others, WAL files included
    assert mode(members) == 0o600


def test_workspace_in_an_existing_directory_is_made_private(tmp_path: Path, conformance_dir: Path) -> None:
    ws = tmp_path / "existing"
    ws.mkdir(mode=0o755)
    r = segmenta("--workspace", str(ws), "init", "--model", str(conformance_dir / "model.yaml"))
    assert r.returncode == 0, r.stderr
    assert mode(ws) == 0o700
    assert mode(ws / "model.yaml") == mode(ws / "data.duckdb") == 0o600
