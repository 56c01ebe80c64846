"""`make demo` saves the example segments as live segments and keeps its workspace between runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def demo(ws: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "DEMO_WS": str(ws), "CONTACTS": "500", "SERVE": "0", **env}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=full, capture_output=True, text=True, timeout=600
    )


def segments(ws: Path) -> dict[str, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "segmenta", "--workspace", str(ws), "segment", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {row["name"]: row for row in json.loads(out)}


@pytest.mark.slow
def test_demo_lists_every_example_live_and_keeps_its_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    first = demo(ws)
    assert first.returncode == 0, first.stderr
    names = {json.loads(f.read_text())["name"] for f in EXAMPLES}
    listed = segments(ws)
    assert names <= set(listed)
    assert {listed[n]["status"] for n in names} == {"live"}
    assert len(first.stdout.strip().splitlines()) >= len(EXAMPLES)  # one size line per example

    again = demo(ws)  # a second run reuses the workspace: nothing is rebuilt or duplicated
    assert again.returncode == 0, again.stderr
    assert "using the existing workspace" in again.stdout
    assert segments(ws).keys() == listed.keys()

    reset = demo(ws, RESET="1")
    assert reset.returncode == 0, reset.stderr
    assert "RESET=1" in reset.stdout
