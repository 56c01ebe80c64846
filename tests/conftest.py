"""Shared fixtures: workspaces built from the public conformance set and from small models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import segmenta

ROOT = Path(__file__).resolve().parents[1]
#: The contract's conformance set and example model, kept in the repository (tests/data/).
SPEC = ROOT / "tests" / "data"
CONFORMANCE = SPEC / "conformance"
SPEC_EXAMPLES = SPEC / "spec-examples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip on a developer laptop when something external is missing; in CI that is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


def sigkill_when(marker: Path, proc: subprocess.Popen[str], *, timeout: float, what: str) -> None:
    """SIGKILL ``proc`` as soon as it creates ``marker`` (a test hook inside its transaction); fail if it never does."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the refresh never reached {what}: {proc.communicate()}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    assert CONFORMANCE.is_dir(), f"the conformance set belongs in the repository at {CONFORMANCE}"
    return CONFORMANCE


@pytest.fixture(scope="session")
def conformance_expected(conformance_dir: Path) -> dict:
    return json.loads((conformance_dir / "expected.json").read_text())


@pytest.fixture(scope="session")
def conformance_ws(conformance_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> segmenta.Workspace:
    """A workspace with the conformance model and every data file loaded (read-only use)."""
    path = tmp_path_factory.mktemp("conformance") / "ws"
    ws = segmenta.Workspace.init(path, model=conformance_dir / "model.yaml")
    for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
        ws.load(csv_file.stem, csv_file)
    yield ws
    ws.close()
