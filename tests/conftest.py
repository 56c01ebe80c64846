"""Shared fixtures: workspaces built from the public conformance set and from small models."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import segmenta

ROOT = Path(__file__).resolve().parents[1]
#: The contract's conformance set and example model, kept in the repository (tests/data/).
SPEC = ROOT / "tests" / "data"
CONFORMANCE = SPEC / "conformance"
SPEC_EXAMPLES = SPEC / "spec-examples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The engine fixture (duckdb, postgres, spark) and the store fixture (sqlite, postgres) for every test module.
pytest_plugins = ["tests.engines.fixtures"]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_process(
    *args: str, serve_args: tuple[str, ...] = (), env: dict[str, str] | None = None, start_timeout: float = 60
) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """``segmenta ARGS serve SERVE_ARGS`` on a free loopback port until the block ends: (process, base URL, output lines so far).

    The caller's ``finally`` is this one's: the process is terminated and waited for when the block ends.
    """
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "segmenta", *args, "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            assert proc.poll() is None, "".join(lines)
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start:\n" + "".join(lines)
            time.sleep(0.1)
        yield proc, base, lines
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        reader.join(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
