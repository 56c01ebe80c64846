"""Files segmenta writes: output never follows a planted symlink, and workspace files are private to their owner."""

from __future__ import annotations

import json
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
