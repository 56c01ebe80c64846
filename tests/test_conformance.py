"""The public conformance set, through the CLI exactly as the contract describes it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE


def segmenta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def cli_ws(conformance_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("cli") / "ws"
    r = segmenta("--workspace", str(ws), "init", "--model", str(conformance_dir / "model.yaml"))
    assert r.returncode == 0, r.stderr
    for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
        r = segmenta("--workspace", str(ws), "load", csv_file.stem, str(csv_file))
        assert r.returncode == 0, r.stderr
    return ws


CASES = sorted(p.stem for p in (CONFORMANCE / "segments").glob("*.json")) if CONFORMANCE.is_dir() else []


@pytest.mark.parametrize("name", CASES)
def test_cli_evaluates_conformance_case(name: str, cli_ws: Path, conformance_dir: Path, tmp_path: Path) -> None:
    expected = json.loads((conformance_dir / "expected.json").read_text())
    out = tmp_path / "members.csv"
    r = segmenta(
        "--workspace",
        str(cli_ws),
        "segment",
        "evaluate",
        str(conformance_dir / "segments" / f"{name}.json"),
        "--as-of",
        expected["as_of"],
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    want = expected["members"][name]
    assert r.stdout.strip().splitlines()[-1] == f"{len(want)} members"
    lines = out.read_text().splitlines()
    audience = json.loads((conformance_dir / "segments" / f"{name}.json").read_text())["audience"]
    key = {"contact": "contactid", "lead": "leadid", "event": "eventid"}[audience]
    assert lines[0] == key
    assert [int(x) for x in lines[1:]] == want


def test_every_expected_case_has_a_definition(conformance_dir: Path) -> None:
    expected = json.loads((conformance_dir / "expected.json").read_text())
    assert sorted(expected["members"]) == CASES


def test_library_api_agrees_with_cli(conformance_ws, conformance_expected, conformance_dir: Path) -> None:
    for name, want in conformance_expected["members"].items():
        result = conformance_ws.evaluate(conformance_dir / "segments" / f"{name}.json", as_of=conformance_expected["as_of"])
        assert result.keys == want, name
