"""``segmenta records consume`` against the REAL NATS server on 127.0.0.1:4222 (JetStream enabled).

Each test makes a stream (and subjects) of its own and deletes it, with its dead-letter
stream, afterwards. The consumer runs as a real process: applied changes are committed before
they are acked, a message re-delivered after the consumer was SIGKILLed between its commit and
its ack changes nothing, and a bad message goes to the dead letter without blocking the next.
Skipped on a laptop without NATS; in CI (``CI=true``) a missing server is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, need, sigkill_when
from tests.lifecycle.conftest import T0, Lifecycle
from tests.realtime.killpoints import hang_env
from tests.realtime.test_records_cli import UK, evaluated, ndjson

URL = os.environ.get("SEGMENTA_TEST_NATS", "nats://127.0.0.1:4222")
SEGMENTS = {"uk": UK}


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _connect() -> Any:
    import nats

    return await asyncio.wait_for(nats.connect(URL, connect_timeout=3, max_reconnect_attempts=1), 10)


@dataclass
class Broker:
    """One test's stream on the real server: publish to it, read its dead letters, look at the consumer."""

    stream: str
    prefix: str
    durable: str = "segmenta-test"

    @property
    def dead_letters(self) -> str:
        return f"{self.stream}_DEADLETTER"

    def publish(self, table: str, op: str, body: Any, *, msg_id: str | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()

        async def go() -> None:
            nc = await _connect()
            try:
                headers = {"Nats-Msg-Id": msg_id} if msg_id else None
                await nc.jetstream().publish(f"{self.prefix}.{table}.{op}", data, headers=headers)
            finally:
                await nc.close()

        _run(go())

    def read_dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        async def go() -> list[tuple[bytes, dict[str, str]]]:
            nc = await _connect()
            try:
                js = nc.jetstream()
                info = await js.stream_info(self.dead_letters)
                out = []
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    msg = await js.get_msg(self.dead_letters, seq)
                    out.append((msg.data or b"", dict(msg.headers or {})))
                return out
            finally:
                await nc.close()

        return list(_run(go()))

    def pending(self) -> tuple[int, int]:
        """(messages not yet delivered, messages delivered and not acked) of the durable consumer."""

        async def go() -> tuple[int, int]:
            nc = await _connect()
            try:
                info = await nc.jetstream().consumer_info(self.stream, self.durable)
                return int(info.num_pending), int(info.num_ack_pending)
            finally:
                await nc.close()

        return tuple(_run(go()))  # type: ignore[return-value]


@pytest.fixture
def broker() -> Iterator[Broker]:
    async def make(name: str, prefix: str) -> None:
        nc = await _connect()
        try:
            await nc.jetstream().add_stream(name=name, subjects=[f"{prefix}.>"])
        finally:
            await nc.close()

    async def drop(names: list[str]) -> None:
        from nats.js.errors import NotFoundError

        nc = await _connect()
        try:
            for name in names:
                with contextlib.suppress(NotFoundError):
                    await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    tag = uuid.uuid4().hex[:12]
    made = Broker(stream=f"SEGTEST_{tag}", prefix=f"segtest.{tag}.records")
    try:
        _run(make(made.stream, made.prefix))
    except Exception as exc:  # noqa: BLE001 - no server, or JetStream off
        need(False, f"NATS with JetStream at {URL} ({type(exc).__name__}: {exc})")
    try:
        yield made
    finally:
        _run(drop([made.stream, made.dead_letters]))


@pytest.fixture
def rt(template_ws: Path, tmp_path: Path) -> Lifecycle:
    """The lifecycle tests' small workspace (SQLite store) with the segment uk (country = UK) live."""
    import shutil

    from typer.testing import CliRunner

    ws = tmp_path / "ws"
    shutil.copytree(template_ws, ws)
    life = Lifecycle(ws=ws, store=None, tmp=tmp_path, runner=CliRunner())
    life.run("segment", "create", life.definition("uk", UK), "--name", "uk")
    life.run("segment", "publish", "uk")
    return life


def consume(life: Lifecycle, broker: Broker, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The consumer as a real process (``--once``, a short ack wait so that a killed consumer's message comes back soon)."""
    cmd = [
        sys.executable,
        "-m",
        "segmenta",
        "records",
        "consume",
        "--nats",
        URL,
        "--stream",
        broker.stream,
        "--subject",
        broker.prefix,
        "--durable",
        broker.durable,
        "--ack-wait",
        "2",
        "--once",
        "--json",
        *extra,
    ]
    full_env = {**life.cli_env(), "SEGMENTA_NOW": T0, **(env or {})}
    return subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], code: int = 0) -> tuple[list[dict[str, Any]], str]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout: {out}\nstderr: {err}"
    return [json.loads(line) for line in out.splitlines() if line.strip()], err


def country_of(life: Lifecycle, key: int) -> str | None:
    """The contact's country, read through a fresh evaluation (no member list involved)."""
    for country in ("UK", "FR", "DE"):
        d = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": country}}]}
        out = life.tmp / f"country-{country}.csv"
        life.run("segment", "evaluate", life.definition(f"c-{country}", d), "--out", str(out))
        if str(key) in out.read_text().split():
            return country
    return None


def test_changes_are_applied_committed_and_acked(rt: Lifecycle, broker: Broker) -> None:
    broker.publish("contact", "upsert", [{"contactid": 2, "country": "UK"}], msg_id="m-1")
    broker.publish("interaction", "upsert", b'{"interactionid": 10, "contactid": 5, "type": "email_click"}\n')
    broker.publish("contact", "delete", {"contactid": 1})
    broker.publish("contact", "upsert", [{"contactid": 7, "email": "gil@example.com", "country": "UK", "statecode": 0}])
    lines, _ = finish(consume(rt, broker))
    totals = lines[-1]["totals"]
    assert (totals["messages"], totals["applied"], totals["rejected"]) == (4, 4, 0)
    assert (totals["inserted"], totals["updated"], totals["deleted"]) == (2, 1, 1)
    assert rt.members("uk") == evaluated(rt, "uk") == [2, 3, 5, 7]
    assert broker.pending() == (0, 0)
    again = consume(rt, broker)  # nothing left: the durable consumer kept its place
    lines, _ = finish(again)
    assert lines[-1]["totals"]["messages"] == 0


def test_a_message_redelivered_after_a_kill_between_commit_and_ack_is_a_no_op(rt: Lifecycle, broker: Broker) -> None:
    broker.publish("contact", "upsert", [{"contactid": 2, "country": "UK"}])  # no Nats-Msg-Id: the stream sequence is the id
    marker = rt.tmp / "committed"
    proc = consume(rt, broker, env=hang_env(marker))
    sigkill_when(marker, proc, timeout=120, what="the commit of its change")
    assert country_of(rt, 2) == "UK"  # committed before the kill
    assert broker.pending()[1] == 1  # ...and never acked
    # Meanwhile contact 2 moves on; re-applying the killed consumer's message would move it back.
    rt.run("records", "upsert", "contact", ndjson(rt.tmp / "fr.ndjson", [{"contactid": 2, "country": "FR"}]))
    lines, _ = finish(consume(rt, broker))
    applied = [line for line in lines if "applied" in line]
    assert len(applied) == 1 and applied[0]["skipped"] == 1
    assert (applied[0]["inserted"], applied[0]["updated"]) == (0, 0)
    assert country_of(rt, 2) == "FR"
    assert rt.members("uk") == evaluated(rt, "uk")
    assert broker.pending() == (0, 0)


def test_a_bad_message_goes_to_the_dead_letter_and_the_next_is_still_applied(rt: Lifecycle, broker: Broker) -> None:
    broker.publish("contact", "upsert", [{"contactid": 2, "country": "UK"}, {"contactid": "two", "country": "UK"}])
    broker.publish("contact", "upsert", b"{not json")
    broker.publish("nosuchtable", "upsert", [{"id": 1}])
    broker.publish("contact", "replace", [{"contactid": 3}])
    broker.publish("contact", "upsert", [{"contactid": 6, "country": "UK"}])
    lines, err = finish(consume(rt, broker))
    totals = lines[-1]["totals"]
    assert (totals["messages"], totals["applied"], totals["rejected"]) == (5, 1, 4)
    assert totals["updated"] == 1
    # the bad file was rejected whole: contact 2 (its good row) did not move
    assert country_of(rt, 2) == "FR" and country_of(rt, 6) == "UK"
    assert rt.members("uk") == evaluated(rt, "uk") == [1, 3, 5, 6]
    letters = broker.read_dead_letters()
    assert len(letters) == 4
    by_seq = {int(h["Segmenta-Sequence"]): (body, h) for body, h in letters}
    assert sorted(by_seq) == [1, 2, 3, 4]
    reasons = {seq: h["Segmenta-Reason"] for seq, (_, h) in by_seq.items()}
    assert "row 2" in reasons[1] and "'contactid'" in reasons[1] and "whole number" in reasons[1]
    assert "not JSON" in reasons[2]
    assert "nosuchtable" in reasons[3]
    assert "replace" in reasons[4]
    assert by_seq[1][0] == json.dumps([{"contactid": 2, "country": "UK"}, {"contactid": "two", "country": "UK"}]).encode()
    assert all(h["Segmenta-Stream"] == broker.stream for _, h in letters)
    assert "rejected" in err
    assert broker.pending() == (0, 0)


def test_a_batch_of_one_table_is_one_change_and_a_bad_message_in_it_spoils_only_itself(rt: Lifecycle, broker: Broker) -> None:
    for key in (1, 2):
        broker.publish("contact", "upsert", [{"contactid": key, "country": "DE"}])
    broker.publish("contact", "upsert", [{"contactid": 3, "statecode": "inactive"}])
    broker.publish("contact", "upsert", [{"contactid": 5, "country": "DE"}])
    lines, _ = finish(consume(rt, broker))
    totals = lines[-1]["totals"]
    assert (totals["applied"], totals["rejected"], totals["updated"]) == (3, 1, 3)
    assert rt.members("uk") == evaluated(rt, "uk") == [3]
    assert [h["Segmenta-Sequence"] for _, h in broker.read_dead_letters()] == ["3"]
