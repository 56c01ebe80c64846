"""Fixtures of the journey tests: a small workspace driven through the CLI, and a real SMTP server.

The SMTP server is aiosmtpd's ``Controller`` on 127.0.0.1 (a free port); every message it
receives is kept (parsed) in :attr:`Sink.messages`. The store is SQLite (the workspace's
file) or PostgreSQL (a fresh schema on 127.0.0.1:5432; skipped on a laptop without it, a
failure in CI), as in tests/lifecycle.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segmenta.interfaces.cli import app
from tests.conftest import free_port
from tests.lifecycle.conftest import pg_schema_url  # noqa: F401 - a fixture: the PostgreSQL store variant

MODEL = {
    "tables": {
        "contact": {
            "key": "contactid",
            "active": {"attribute": "statecode", "equals": 0},
            "columns": {
                "contactid": {"type": "integer"},
                "firstname": {"type": "text"},
                "email": {"type": "text"},
                "country": {"type": "text"},
                "tier": {"type": "text"},
                "purchased": {"type": "boolean"},
                "clicked": {"type": "boolean"},
                "statecode": {"type": "integer"},
            },
        },
    },
}
HEADER = ["contactid", "firstname", "email", "country", "tier", "purchased", "clicked", "statecode"]
CONTACTS = [
    (1, "Ann", "ann@example.com", "UK", "gold", "false", "false", 0),
    (2, "Bob", "bob@example.com", "UK", "silver", "false", "false", 0),
    (3, "Cleo", "", "UK", "gold", "false", "false", 0),  # no address: skipped
    (4, "Dara", "dara@example.com", "FR", "gold", "false", "false", 0),  # not in the entry segment
    (5, "Eve", "eve@example.com", "UK", "gold", "false", "false", 0),  # excluded (do-not-email)
]
T0 = "2026-10-01T12:00:00"


def segment(name: str, where: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "audience": "contact", "groups": [{"where": where}]}


SEGMENTS = {
    "uk": segment("uk", {"attribute": "country", "op": "eq", "value": "UK"}),
    "do-not-email": segment("do-not-email", {"attribute": "firstname", "op": "eq", "value": "Eve"}),
    "purchased": segment("purchased", {"attribute": "purchased", "op": "is_true"}),
    "clickers": segment("clickers", {"attribute": "clicked", "op": "is_true"}),
}


@dataclass
class Sink:
    """What the SMTP server received."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def subjects(self) -> list[tuple[str, str]]:
        with self.lock:
            return sorted((str(m["To"]), str(m["Subject"])) for m in self.messages)


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture()
def smtp() -> Iterator[tuple[str, Sink]]:
    """A real SMTP server on loopback: (smtp://127.0.0.1:PORT, what it received)."""
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", sink
    finally:
        controller.stop()


def write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@dataclass
class JourneyWs:
    """A workspace plus a store, driven through the CLI in-process."""

    ws: Path
    store: str | None
    tmp: Path
    smtp_url: str = ""
    runner: CliRunner = field(default_factory=CliRunner)

    def env(self, now: str) -> dict[str, str]:
        return {"SEGMENTA_NOW": now, "SEGMENTA_SMTP_URL": self.smtp_url}

    def run(self, *args: str, code: int = 0, now: str = T0) -> Any:
        base = ["--workspace", str(self.ws)] + (["--store", self.store] if self.store else [])
        result = self.runner.invoke(app, [*base, *args], env=self.env(now))
        assert result.exit_code == code, (
            f"{args}: exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"
        )
        return result

    def file(self, name: str, data: dict[str, Any]) -> str:
        p = self.tmp / name
        p.write_text(json.dumps(data), encoding="utf-8")
        return str(p)

    def publish_segments(self, *names: str, now: str = T0) -> None:
        for n in names:
            self.run("segment", "create", self.file(f"{n}.json", SEGMENTS[n]), now=now)
            self.run("segment", "publish", n, now=now)

    def upsert(self, rows: list[dict[str, Any]], now: str) -> None:
        p = self.tmp / "change.json"
        p.write_text(json.dumps(rows), encoding="utf-8")
        self.run("records", "upsert", "contact", str(p), now=now)

    def report(self, name: str, now: str = T0) -> dict[str, Any]:
        return json.loads(self.run("journey", "report", name, "--json", now=now).stdout)

    def worker(self, now: str, code: int = 0) -> Any:
        return self.run("worker", "--once", now=now, code=code)


@pytest.fixture(scope="session")
def journey_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import segmenta

    root = tmp_path_factory.mktemp("journey-template")
    model = root / "model.json"
    model.write_text(json.dumps(MODEL))
    ws = segmenta.Workspace.init(root / "ws", model=model)
    ws.load("contact", write_csv(root / "c.csv", HEADER, CONTACTS))
    ws.close()
    return root / "ws"


@pytest.fixture(params=["sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def jws(
    journey_template: Path, tmp_path: Path, smtp: tuple[str, Sink], store_kind: str, request: pytest.FixtureRequest
) -> JourneyWs:
    """A private copy of the small workspace; its store is SQLite, or PostgreSQL where a test asks (``store_kind``)."""
    ws = tmp_path / "ws"
    shutil.copytree(journey_template, ws)
    store = request.getfixturevalue("pg_schema_url") if store_kind == "postgres" else None
    return JourneyWs(ws=ws, store=store, tmp=tmp_path, smtp_url=smtp[0])


@pytest.fixture()
def sink(smtp: tuple[str, Sink]) -> Sink:
    return smtp[1]


WELCOME = {
    "name": "welcome",
    "audience": "contact",
    "entry": {"segments": ["uk"], "exclude": ["do-not-email"], "frequency": "once"},
    "exit": {"segments": ["purchased"]},
    "steps": [
        {"id": "hello", "send": {"channel": "email", "subject": "Hello {firstname}", "body": "Welcome, {firstname}."}},
        {"id": "pause", "wait": {"days": 3}},
        {"id": "clicked", "wait_until_member": {"segment": "clickers", "timeout": {"days": 7}}, "yes": "thanks", "no": "nudge"},
        {"id": "nudge", "send": {"channel": "email", "subject": "Still there?", "body": "..."}, "next": "end"},
        {"id": "thanks", "send": {"channel": "email", "subject": "Thanks", "body": "..."}},
    ],
}
