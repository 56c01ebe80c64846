"""Request bodies are capped: refused with 413 naming the limit, before a big body is read into memory.

The 100 MB cases run against a real ``segmenta serve`` on loopback, whose peak memory (VmHWM)
is read from /proc before and after.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from segmenta.errors import RejectedInput
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import GOLD, Api, Template
from tests.conftest import need

MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(workspace: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "segmenta",
        "--workspace",
        str(workspace),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log = (workspace.parent / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (workspace.parent / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status")
    need(status.is_file(), "/proc (Linux) to read the server's memory")
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _raw(base: str, head: bytes, chunks: Iterator[bytes]) -> bytes:
    """Send ``head`` then ``chunks`` until the server stops reading; the server's answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head)
        try:
            for chunk in chunks:
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending: the point
        answer = b""
        try:
            while part := s.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
    return answer


def _chunked(total: int) -> Iterator[bytes]:
    first = b'{"username": "admin", "password": "'
    yield b"%x\r\n%s\r\n" % (len(first), first)
    piece = b"a" * 65536
    sent = 0
    while sent < total:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
        sent += len(piece)
    yield b"0\r\n\r\n"


@pytest.fixture
def workspace(template: Template, tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    shutil.copytree(template.path, path)
    return path


def test_an_anonymous_100mb_login_body_is_refused_without_being_read(workspace: Path) -> None:
    with served(workspace) as (base, proc):
        assert httpx.post(f"{base}/api/auth/login", json={"username": "a", "password": "b"}).status_code == 401
        before = _peak_rss(proc.pid)
        # Declared: refused on the Content-Length alone.
        head = (
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (100 * MB)
        )
        answer = _raw(base, head, iter([b"x" * 65536] * 64))
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert "1,048,576 bytes" in body["error"]["message"] and "service.max_body_bytes" in body["error"]["message"]
        # Chunked: counted while it streams, refused once past the cap.
        head = (
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        answer = _raw(base, head, _chunked(100 * MB))
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"service.max_body_bytes" in answer
        grown = _peak_rss(proc.pid) - before
        assert grown < 30 * MB, f"the server's peak memory grew by {grown / MB:.0f} MB"
        # The service still answers.
        assert httpx.post(f"{base}/api/auth/login", json={"username": "a", "password": "b"}).status_code == 401


def test_the_caps_are_settings_and_uploads_get_the_larger_one(workspace: Path) -> None:
    _set(workspace, {"max_body_bytes": 2048, "max_upload_bytes": 8192})
    service = Service(workspace)
    from fastapi.testclient import TestClient

    with TestClient(create_app(service=service)) as client:
        token = {"Authorization": "Bearer " + _admin_token(service)}
        big = {"definition": GOLD, "name": "x" * 3000}
        refused = client.post("/api/segments", json=big, headers=token)
        assert refused.status_code == 413
        assert "2,048 bytes" in refused.json()["error"]["message"]
        assert "service.max_body_bytes" in refused.json()["error"]["message"]
        assert client.get("/api/segments/x", headers=token).status_code == 404  # nothing was created
        rows = b"accountid,name,industry,employees,revenue,country\n" + b"1,Northwind,Retail,120,1500000.0,UK\n" * 60
        assert 2048 < len(rows) < 8192
        loaded = client.post("/api/tables/account/load", files={"file": ("a.csv", rows, "text/csv")}, headers=token)
        assert loaded.status_code != 413, loaded.text
        too_big = rows * 4
        refused = client.post("/api/tables/account/load", files={"file": ("a.csv", too_big, "text/csv")}, headers=token)
        assert refused.status_code == 413 and "service.max_upload_bytes" in refused.text


def _set(workspace: Path, service: dict[str, object]) -> None:
    config = workspace / "segmenta.yaml"
    settings = (yaml.safe_load(config.read_text()) if config.is_file() else None) or {}
    settings["service"] = service
    config.write_text(yaml.safe_dump(settings))


def _admin_token(service: Service) -> str:
    return service.users.create_token("admin", label="test")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "from 1,024 to 1,073,741,824"), ("1MB", "not '1MB'"), (True, "not True"), (10**12, "from 1,024")],
)
def test_a_bad_cap_setting_is_rejected_naming_key_and_range(workspace: Path, value: object, expected: str) -> None:
    _set(workspace, {"max_body_bytes": value})
    service = Service(workspace)
    try:
        with pytest.raises(RejectedInput) as err:
            create_app(service=service)
    finally:
        service.close()
    assert "segmenta.yaml: service.max_body_bytes" in str(err.value) and expected in str(err.value)


def test_a_body_under_the_cap_still_works(api: Api) -> None:
    assert api.call("marketer", "POST", "/api/segments", json={"definition": GOLD, "name": "Fits"}).status_code == 201


def test_serve_refuses_to_start_on_a_bad_setting(workspace: Path) -> None:
    _set(workspace, {"max_upload_bytes": "lots"})
    done = subprocess.run(
        [sys.executable, "-m", "segmenta", "--workspace", str(workspace), "serve", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "segmenta.yaml: service.max_upload_bytes: must be a whole number from 1,024 to 68,719,476,736" in done.stderr
